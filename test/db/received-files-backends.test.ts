import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { link, mkdir, readFile, readdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { refusedUploadHolds, refusedUploadsError } from "../../src/sync/refused-uploads.ts";
import type { Clock } from "../../src/clock.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";

class TestClock implements Clock {
  #now = new Date("2026-11-02T02:00:00.000Z");
  now(): Date {
    return new Date(this.#now);
  }
  advance(seconds: number): void {
    this.#now = new Date(this.#now.getTime() + seconds * 1000);
  }
}

/** What the district's folder and the archive hold, on every database backend. */
for (const backend of selectedBackends()) {
  describe(`received files on ${backend.name}`, { skip: backend.skip }, () => {
    const homes = new BackendHomes(backend.name);
    const clock = new TestClock();
    let home: BackendHome;
    let rd: Rosterdock;
    let districtId: number;
    let folder: string;

    before(async () => {
      home = await homes.create({ ROSTERDOCK_QUIET_SECONDS: "60" });
      rd = await createRosterdock(loadConfig(home.env), { logger: createLogger("silent"), clock });
      districtId = (await rd.districts.create({ slug: "adams", name: "Adams" }, "test")).district.id;
      folder = rd.storage.homeDir(districtId);
    });

    after(async () => {
      await rd?.close();
      await home?.remove();
      await homes.close();
    });

    /** An upload as the SFTP session makes it: archived and recorded, then renamed into view. */
    async function upload(path: string, content: string): Promise<string> {
      const tempPath = await rd.storage.incomingPath(districtId);
      await writeFile(tempPath, content);
      const id = await rd.deliveries.accept({
        districtId,
        path,
        tempPath,
        size: Buffer.byteLength(content),
        sha256: createHash("sha256").update(content).digest("hex"),
        clientIp: "127.0.0.1",
        clientVersion: "SSH-2.0-OpenSSH_9.2",
        startedAt: clock.now().toISOString(),
      });
      await rename(tempPath, join(folder, path));
      return id;
    }

    function refuse(path: string, reason: string) {
      return rd.deliveries.recordRefused({ districtId, path, size: 0, clientIp: "127.0.0.1", clientVersion: "SSH-2.0-OpenSSH_9.2", startedAt: clock.now().toISOString(), reason });
    }

    async function closeNight() {
      clock.advance(61);
      const closed = await rd.deliveries.closeQuietDeliveries();
      assert.equal(closed.length, 1);
      return closed[0]!;
    }

    const visible = async () => (await readdir(folder, { recursive: true })).sort();

    it("takes a closed delivery's files out of the folder; the archive keeps them and the sync reads them there", async () => {
      await mkdir(join(folder, "reports"));
      await writeFile(join(folder, "reports", "notes.txt"), "the district's own file");
      await upload("/students_20261102.csv", "ID\n1\n");
      await upload("/teachers_20261102.csv", "ID\n2\n");
      assert.deepEqual(await visible(), ["reports", "reports/notes.txt", "students_20261102.csv", "teachers_20261102.csv"]);

      const closed = await closeNight();
      assert.equal(closed.removedFromView, 2);
      assert.deepEqual(await visible(), ["reports", "reports/notes.txt"]);
      const files = await rd.database.db.selectFrom("sync_files").select(["name", "stored_path"]).where("sync_id", "=", closed.syncId).orderBy("id").execute();
      assert.deepEqual(files.map((f) => f.name), ["students_20261102.csv", "teachers_20261102.csv"]);
      // In the node's archive folder (SQLite), or in the database for any node (PostgreSQL).
      for (const f of files) assert.match(f.stored_path, backend.name === "postgres" ? /^pg:\d+$/ : /^districts\/\d+\/archive\//);
      const local = await rd.storage.localFiles(closed.syncId, files.map((f) => ({ ...f, sha256: "" })));
      assert.equal(await readFile(local.files[0]!.path, "utf8"), "ID\n1\n");
      await local.release();
    });

    it("takes out the upload a delivery kept when a name was sent twice, and leaves a newer one sent after the close", async () => {
      await upload("/students_20261103.csv", "ID\n1\n");
      clock.advance(30);
      await upload("/students_20261103.csv", "ID\n1\n2\n"); // sent again within the quiet period: it replaces the first
      const closed = await closeNight();
      assert.equal(closed.files, 1);
      assert.equal(closed.removedFromView, 1);
      assert.deepEqual(await visible(), ["reports", "reports/notes.txt"]);

      // The same name again, after the close: a new delivery's file, which stays.
      await upload("/students_20261103.csv", "ID\n3\n");
      assert.equal(await rd.deliveries.removeReceived(districtId), 0);
      assert.deepEqual(await visible(), ["reports", "reports/notes.txt", "students_20261103.csv"]);
      await closeNight();
      assert.deepEqual(await visible(), ["reports", "reports/notes.txt"]);
    });

    it("leaves a file of the same name that is not the received upload", async () => {
      await upload("/cc_20261104.csv", "ID\n1\n");
      const closed = await closeNight();
      assert.equal(closed.removedFromView, 1);
      // Put there by other means under the received file's name: not the archived file, so it stays.
      await writeFile(join(folder, "cc_20261104.csv"), "ID\n1\n");
      assert.equal(await rd.deliveries.removeReceived(districtId), 0);
      assert.deepEqual(await visible(), ["cc_20261104.csv", "reports", "reports/notes.txt"]);
      await rd.storage.discard(join(folder, "cc_20261104.csv"));
    });

    it("takes out at the next start what a crash left in view after the close committed, once", async () => {
      if (backend.name === "postgres") {
        // As if the node died between the close's commit and the removal: closed, the file still in view.
        await upload("/terms_20261105.csv", "ID\n1\n");
        await rd.database.db.updateTable("deliveries").set({ status: "closed" }).where("district_id", "=", districtId).where("status", "=", "open").execute();
      } else {
        await upload("/terms_20261105.csv", "ID\n1\n");
        const closed = await closeNight();
        const [file] = await rd.database.db.selectFrom("sync_files").select("stored_path").where("sync_id", "=", closed.syncId).execute();
        // As if the server died between the close's commit and the removal: the same file, still in view.
        await link(rd.storage.absolute(file!.stored_path), join(folder, "terms_20261105.csv"));
      }
      assert.equal(await rd.deliveries.removeReceivedEverywhere(), 1);
      assert.equal(await rd.deliveries.removeReceivedEverywhere(), 0);
      assert.deepEqual(await visible(), ["reports", "reports/notes.txt"]);
    });

    it("takes out an upload renamed into view just after its delivery closed", async () => {
      const tempPath = await rd.storage.incomingPath(districtId);
      await writeFile(tempPath, "ID\n1\n");
      const id = await rd.deliveries.accept({
        districtId,
        path: "/courses_20261106.csv",
        tempPath,
        size: 5,
        sha256: createHash("sha256").update("ID\n1\n").digest("hex"),
        clientIp: "127.0.0.1",
        clientVersion: "SSH-2.0-OpenSSH_9.2",
        startedAt: clock.now().toISOString(),
      });
      assert.equal(await rd.deliveries.removeIfReceived(districtId, id), false);
      assert.equal((await closeNight()).removedFromView, 0);
      await rename(tempPath, join(folder, "courses_20261106.csv"));
      assert.equal(await rd.deliveries.removeIfReceived(districtId, id), true);
      assert.deepEqual(await visible(), ["reports", "reports/notes.txt"]);
    });

    it("records a refused upload in the night's delivery, and holds the night unless the file came whole later", async () => {
      await refuse("/cc_20261107.csv", "Quota exceeded: the folder already holds 10 files waiting to be processed.");
      const open = await rd.deliveries.openDelivery(districtId);
      assert.ok(open !== undefined, "a refusal opens the night's delivery");
      const refused = { deliveryId: open.id };
      await upload("/students_20261107.csv", "ID\n1\n");
      await refuse("/teachers_20261107.csv", "Upload too large: files may be at most 1,000 bytes.");
      await upload("/teachers_20261107.csv", "ID\n2\n"); // sent again, whole: not missing
      const uploads = await rd.deliveries.listUploads(districtId, 4);
      assert.deepEqual(
        uploads.map((u) => [u.path, u.status, u.deliveryId, u.reason]),
        [
          ["/teachers_20261107.csv", "accepted", refused.deliveryId, null],
          ["/teachers_20261107.csv", "refused", refused.deliveryId, "Upload too large: files may be at most 1,000 bytes."],
          ["/students_20261107.csv", "accepted", refused.deliveryId, null],
          ["/cc_20261107.csv", "refused", refused.deliveryId, "Quota exceeded: the folder already holds 10 files waiting to be processed."],
        ],
      );
      const closed = await closeNight();
      assert.equal(closed.deliveryId, refused.deliveryId);
      assert.equal(closed.files, 2);
      const holds = await refusedUploadHolds(rd.database.db, closed.deliveryId);
      assert.deepEqual(holds.map((h) => [h.code, h.file]), [["REFUSED_UPLOAD", "cc_20261107.csv"]]);
      assert.match(holds[0]!.message, /^cc_20261107\.csv was sent with this delivery but refused: Quota exceeded/);
      assert.deepEqual(await refusedUploadHolds(rd.database.db, null), [], "an ingest has no delivery");
    });

    it("records a cut-off upload in the open delivery (opening none), and holds the night unless the file came whole later", async () => {
      // The delivery the partial upload was recorded in (the latest upload's).
      const partial = async (path: string) => {
        await rd.deliveries.recordPartial({ districtId, path, size: 3, clientIp: "127.0.0.1", clientVersion: "SSH-2.0-OpenSSH_9.2", startedAt: clock.now().toISOString(), reason: "The server stopped during the transfer." });
        const [latest] = await rd.deliveries.listUploads(districtId, 1);
        return { deliveryId: latest!.deliveryId };
      };
      assert.equal((await partial("/cc_20261108.csv")).deliveryId, null, "no night is being received");
      assert.equal(await rd.deliveries.openDelivery(districtId), undefined, "a partial upload opens no delivery");
      await upload("/students_20261108.csv", "ID\n1\n");
      const open = await rd.deliveries.openDelivery(districtId);
      assert.equal((await partial("/cc_20261108.csv")).deliveryId, open?.id);
      assert.equal((await partial("/teachers_20261108.csv")).deliveryId, open?.id);
      await upload("/teachers_20261108.csv", "ID\n2\n"); // sent again, whole: not missing
      const closed = await closeNight();
      const holds = await refusedUploadHolds(rd.database.db, closed.deliveryId);
      assert.deepEqual(holds.map((h) => [h.code, h.file]), [["PARTIAL_UPLOAD", "cc_20261108.csv"]]);
      assert.match(holds[0]!.message, /^cc_20261108\.csv was sent with this delivery but cut off during its transfer: The server stopped/);
      assert.equal(refusedUploadsError(holds).error, "Cut off during transfer, so missing from this delivery: cc_20261108.csv. `rosterdock uploads` says why.");
    });
  });
}
