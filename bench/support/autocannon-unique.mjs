// autocannon with a unique value in place of `[<id>]` in each request's path, so that no request
// is answered from a response cache. Usage: node autocannon-unique.mjs URL CONNECTIONS SECONDS HEADERS_JSON
import autocannon from "autocannon";

const [url, connections, seconds, headers] = process.argv.slice(2);
const target = new URL(url.replace("[<id>]", "ID"));
const template = `${target.pathname}${target.search}`;
let counter = 0;
const result = await autocannon({
  url: target.origin,
  connections: Number(connections),
  duration: Number(seconds),
  headers: JSON.parse(headers),
  requests: [{ method: "GET", setupRequest: (request) => ({ ...request, path: template.replace("ID", String(++counter)) }) }],
});
process.stdout.write(JSON.stringify(result));
