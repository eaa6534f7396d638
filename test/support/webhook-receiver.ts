import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook endpoint on loopback that records what it receives; `failNext` answers 500 that many times first. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  failNext = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(path = "/hooks"): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        if (receiver!.failNext > 0) {
          receiver!.failNext--;
          res.writeHead(500).end();
          return;
        }
        receiver!.received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    receiver = new WebhookReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`);
    return receiver;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
