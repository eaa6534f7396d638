import { createHash, type Hash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import * as fs from "node:fs";
import { copyFile, lstat, mkdir, open, readdir, rmdir, stat, unlink, utimes, type FileHandle } from "node:fs/promises";
import type { Attributes, SFTPWrapper } from "ssh2";
import ssh2 from "ssh2";
import type { Logger } from "pino";
import type { DeliveryService } from "../deliveries/delivery-service.ts";
import type { LocalStorage } from "../storage/local-storage.ts";
import { basename } from "node:path";
import { isRosterdockError, RosterdockError } from "../errors.ts";
import { longName, toAttributes } from "./attributes.ts";
import { Jail } from "./jail.ts";
import { sftpStatusFor } from "./sftp-status.ts";
import { assertDepthFits, assertPathFits, assertRoomForFolder, folderDepth, shortPath, subtreeDepth, type PathLimitSettings } from "./path-limits.ts";
import { archiveFullMessage } from "../storage/archive-usage.ts";

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;
/** SSH_EXTENDED_DATA_STDERR (RFC 4254, 5.2). */
const STDERR = 1;

/** Contiguous WRITEs are gathered into writes of this size (measured: far fewer syscalls, no slower). */
const COALESCE_BYTES = 1024 * 1024;
const MAX_READ_BYTES = 256 * 1024;
const MAX_OPEN_HANDLES = 64;
const READDIR_BATCH = 100;

export interface SessionLimits extends PathLimitSettings {
  maxUploadBytes: number;
  maxFilesPerDistrict: number;
  maxOutstandingWriteBytes: number;
  /** False when the process is near its descriptor limit: new files wait, HTTP and the database keep theirs. */
  hasDescriptorRoom?: () => boolean;
  archiveQuotaBytes: number;
  /** Runs a file operation in the district's turn (see DistrictFileGate); at once when absent. */
  fileTurn?: <T>(work: () => Promise<T>) => Promise<T>;
}

export interface SessionContext {
  districtId: number;
  districtSlug: string;
  clientIp: string;
  clientVersion: string;
}

interface WriteHandle {
  kind: "write";
  path: string;
  realPath: string;
  tempPath: string;
  fd: number;
  startedAt: string;
  size: number;
  /** What the district's archive has room for when the upload opened (it is archived whole at close). */
  archiveRoom: number;
  archiveUsed: number;
  append: boolean;
  /** Hashing as we go works only while writes arrive in order; otherwise hash on close. */
  hash: Hash | undefined;
  hashedUpTo: number;
  pending: { buffer: Buffer; start: number; length: number; reqIds: number[] } | undefined;
  /** The coalescing buffer, kept across flushes (written synchronously, so free again at once). */
  spare: Buffer | undefined;
  flushScheduled: boolean;
  failure: RosterdockError | Error | undefined;
  /** The client has been told why the upload failed (once, however many writes were in flight). */
  told: boolean;
  times: { atime: number; mtime: number } | undefined;
}

interface ReadHandle {
  kind: "read";
  path: string;
  file: FileHandle;
}

interface DirHandle {
  kind: "dir";
  path: string;
  realPath: string;
  names: string[] | undefined;
  position: number;
}

type Handle = WriteHandle | ReadHandle | DirHandle;

/**
 * One SFTP session of one district: a jailed file system over the district's home folder.
 * Uploads go to a hidden temporary file and become visible (and part of a delivery) only
 * when the client closes the handle; a handle still open when the connection ends is a
 * partial upload and is discarded.
 */
export class SftpSession {
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private pendingWriteBytes = 0;
  /** OPENs between their check against the cap and their handle. */
  private opening = 0;
  private readonly refusedOpens = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly jail: Jail,
    private readonly context: SessionContext,
    private readonly storage: LocalStorage,
    private readonly deliveries: DeliveryService,
    private readonly limits: SessionLimits,
    private readonly logger: Logger,
  ) {
    this.bind();
  }

  private bind(): void {
    const s = this.sftp;
    const run = (reqId: number, work: () => Promise<void>) => {
      work().catch((error: unknown) => this.fail(reqId, error));
    };
    const turn = this.limits.fileTurn ?? (<T>(work: () => Promise<T>) => work());
    s.on("OPEN", (reqId, filename, flags, attrs) => run(reqId, () => this.withHandleSlot(() => turn(() => this.open(reqId, filename, flags, attrs)))));
    s.on("WRITE", (reqId, handle, offset, data) => this.write(reqId, handle, offset, data));
    s.on("READ", (reqId, handle, offset, length) => run(reqId, () => this.read(reqId, handle, offset, length)));
    s.on("CLOSE", (reqId, handle) => run(reqId, () => turn(() => this.close(reqId, handle))));
    s.on("FSTAT", (reqId, handle) => run(reqId, () => this.fstat(reqId, handle)));
    s.on("FSETSTAT", (reqId, handle, attrs) => run(reqId, () => this.fsetstat(reqId, handle, attrs)));
    s.on("OPENDIR", (reqId, path) => run(reqId, () => this.withHandleSlot(() => this.opendir(reqId, path))));
    s.on("READDIR", (reqId, handle) => run(reqId, () => this.readdir(reqId, handle)));
    s.on("STAT", (reqId, path) => run(reqId, () => this.stat(reqId, path)));
    s.on("LSTAT", (reqId, path) => run(reqId, () => this.stat(reqId, path)));
    s.on("SETSTAT", (reqId, path, attrs) => run(reqId, () => this.setstat(reqId, path, attrs)));
    s.on("REALPATH", (reqId, path) => run(reqId, () => this.realpath(reqId, path)));
    s.on("MKDIR", (reqId, path) => run(reqId, () => this.mkdir(reqId, path)));
    s.on("RMDIR", (reqId, path) => run(reqId, () => this.rmdir(reqId, path)));
    s.on("REMOVE", (reqId, path) => run(reqId, () => this.remove(reqId, path)));
    s.on("RENAME", (reqId, from, to) => run(reqId, () => this.rename(reqId, from, to)));
    // The OpenSSH client waits for the server to end the stream before it exits.
    s.on("end", () => s.end());
  }

  // ---- handles -------------------------------------------------------------------------

  /** Takes a handle's place before anything is opened, so a refused OPEN leaves no descriptor behind. */
  private async withHandleSlot(work: () => Promise<void>): Promise<void> {
    if (this.handles.size + this.opening >= MAX_OPEN_HANDLES) {
      this.refusedOpen("handles_per_session", MAX_OPEN_HANDLES);
      throw new RosterdockError("ERR_UNSUPPORTED", `At most ${MAX_OPEN_HANDLES} files may be open at once.`);
    }
    if (this.limits.hasDescriptorRoom?.() === false) {
      this.refusedOpen("descriptors", undefined);
      throw new RosterdockError("ERR_SERVER_BUSY", "The server is busy: close some files or try again later.");
    }
    this.opening++;
    try {
      await work();
    } finally {
      this.opening--;
    }
  }

  /** Logged once per session and limit: a client retrying in a loop would otherwise flood the log. */
  private refusedOpen(limit: "handles_per_session" | "descriptors", max: number | undefined): void {
    const count = (this.refusedOpens.get(limit) ?? 0) + 1;
    this.refusedOpens.set(limit, count);
    if (count > 1) return;
    this.logger.warn({ event: "sftp.open.refused", limit, max, ip: this.context.clientIp, district: this.context.districtSlug }, "file open refused: limit reached");
  }

  private addHandle(handle: Handle): Buffer {
    const id = this.nextHandle++;
    this.handles.set(id, handle);
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32BE(id);
    return buffer;
  }

  private handleId(buffer: Buffer): number {
    return buffer.length === 4 ? buffer.readUInt32BE() : -1;
  }

  private lookup(buffer: Buffer): Handle | undefined {
    return this.handles.get(this.handleId(buffer));
  }

  // ---- open / write / close ------------------------------------------------------------

  private async open(reqId: number, filename: string, flags: number, _attrs: Attributes): Promise<void> {
    if (!(flags & OPEN_MODE.WRITE) && !(flags & OPEN_MODE.APPEND)) return this.openForReading(reqId, filename);
    const startedAt = new Date().toISOString();
    let handle: WriteHandle;
    try {
      handle = await this.openForWriting(filename, flags, startedAt);
    } catch (error) {
      return this.refuse(reqId, { path: this.recordablePath(filename), size: 0, startedAt }, error);
    }
    this.sftp.handle(reqId, this.addHandle(handle));
  }

  private async openForReading(reqId: number, filename: string): Promise<void> {
    const path = this.jail.virtual(filename);
    const realPath = this.jail.real(filename);
    await this.jail.assertInside(realPath);
    const existing = await lstat(realPath).catch(() => undefined);
    if (existing && !existing.isFile()) return this.status(reqId, STATUS_CODE.FAILURE, `${path} is a folder, not a file.`);
    if (!existing) return this.status(reqId, STATUS_CODE.NO_SUCH_FILE, `${path} does not exist.`);
    const file = await open(realPath, "r");
    this.sftp.handle(reqId, this.addHandle({ kind: "read", path, file }));
  }

  /** Opens an upload, or throws why it is refused (each refusal is recorded by `refuse`). */
  private async openForWriting(filename: string, flags: number, startedAt: string): Promise<WriteHandle> {
    const path = this.jail.virtual(filename);
    assertPathFits(path, this.limits);
    const realPath = this.jail.real(filename);
    await this.jail.assertInside(realPath);
    if (this.handles.size >= MAX_OPEN_HANDLES) throw new RosterdockError("ERR_UNSUPPORTED", `At most ${MAX_OPEN_HANDLES} files may be open at once.`);
    const existing = await lstat(realPath).catch(() => undefined);
    if (existing && !existing.isFile()) throw new RosterdockError("ERR_NAME_IN_USE", `${path} is a folder, not a file.`);
    if (existing && flags & OPEN_MODE.EXCL) throw new RosterdockError("ERR_NAME_IN_USE", `${path} already exists.`);
    const parentPath = path.slice(0, path.lastIndexOf("/")) || "/";
    const parent = await stat(realPath.slice(0, realPath.lastIndexOf("/")) || "/").catch(() => undefined);
    if (!parent?.isDirectory()) throw new RosterdockError("ERR_NOT_FOUND", `The folder ${parentPath} does not exist: create it, or send the file to /.`);
    const max = this.limits.maxFilesPerDistrict;
    if (!existing && (await this.countFiles(this.jail.root, max)) >= max) {
      throw new RosterdockError(
        "ERR_TOO_MANY_FILES",
        `Quota exceeded: the folder already holds ${max} files waiting to be processed. Received files leave it on their own once their delivery is closed; remove any others placed there.`,
      );
    }
    const archive = await this.storage.archiveUsage.check(this.context.districtId, this.limits.archiveQuotaBytes);
    this.logArchiveChange(archive);
    if (archive.full) throw new RosterdockError("ERR_ARCHIVE_FULL", archiveFullMessage(archive.usedBytes, archive.quotaBytes));
    const tempPath = await this.storage.incomingPath(this.context.districtId, {
      path,
      startedAt,
      clientIp: this.context.clientIp,
      clientVersion: this.context.clientVersion,
    });
    const keepContent = existing && !(flags & OPEN_MODE.TRUNC);
    let fd: number;
    try {
      if (keepContent) await copyFile(realPath, tempPath);
      fd = fs.openSync(tempPath, keepContent ? "r+" : "w", 0o640);
    } catch (error) {
      await this.storage.discard(tempPath);
      throw error;
    }
    return {
      kind: "write",
      path,
      realPath,
      tempPath,
      fd,
      startedAt,
      size: keepContent ? existing.size : 0,
      archiveRoom: archive.quotaBytes - archive.usedBytes,
      archiveUsed: archive.usedBytes,
      append: Boolean(flags & OPEN_MODE.APPEND),
      hash: keepContent ? undefined : createHash("sha256"),
      hashedUpTo: 0,
      pending: undefined,
      flushScheduled: false,
      failure: undefined,
      told: false,
      times: undefined,
      spare: undefined,
    };
  }

  private write(reqId: number, handleBuffer: Buffer, offset: number, data: Buffer): void {
    const handle = this.lookup(handleBuffer);
    if (handle?.kind !== "write") return this.status(reqId, STATUS_CODE.FAILURE, "That handle is not open for writing.");
    if (handle.failure) return this.failWrite(handle, [reqId]);
    const position = handle.append ? handle.size : offset;
    if (position + data.length > this.limits.maxUploadBytes) {
      handle.failure = new RosterdockError("ERR_UPLOAD_TOO_LARGE", `Upload too large: files may be at most ${this.limits.maxUploadBytes.toLocaleString("en-US")} bytes.`);
      return this.failWrite(handle, [reqId]);
    }
    if (position + data.length > handle.archiveRoom) {
      handle.failure = new RosterdockError("ERR_ARCHIVE_FULL", archiveFullMessage(handle.archiveUsed, this.limits.archiveQuotaBytes, position + data.length));
      return this.failWrite(handle, [reqId]);
    }
    let pending = handle.pending;
    if (pending && (pending.start + pending.length !== position || pending.length + data.length > COALESCE_BYTES)) {
      this.flush(handle);
      pending = undefined;
    }
    if (data.length >= COALESCE_BYTES) {
      this.writeNow(handle, data, position, [reqId]);
      return;
    }
    if (!pending) {
      handle.spare ??= Buffer.allocUnsafe(COALESCE_BYTES);
      pending = { buffer: handle.spare, start: position, length: 0, reqIds: [] };
      handle.pending = pending;
    }
    data.copy(pending.buffer, pending.length);
    pending.length += data.length;
    pending.reqIds.push(reqId);
    this.pendingWriteBytes += data.length;
    handle.size = Math.max(handle.size, position + data.length);
    if (pending.length >= COALESCE_BYTES || this.pendingWriteBytes >= this.limits.maxOutstandingWriteBytes) {
      this.flushAll();
    } else if (!handle.flushScheduled) {
      // Everything that arrived in this read from the socket is written together.
      handle.flushScheduled = true;
      setImmediate(() => {
        handle.flushScheduled = false;
        this.flush(handle);
      });
    }
  }

  private flushAll(): void {
    for (const handle of this.handles.values()) if (handle.kind === "write") this.flush(handle);
  }

  private flush(handle: WriteHandle): void {
    const pending = handle.pending;
    if (!pending) return;
    handle.pending = undefined;
    this.pendingWriteBytes -= pending.length;
    this.writeNow(handle, pending.buffer.subarray(0, pending.length), pending.start, pending.reqIds);
  }

  /**
   * Writes synchronously, then acknowledges: on two cores this beat the thread pool, and it
   * bounds what the server holds for a client to what one socket read delivers.
   */
  private writeNow(handle: WriteHandle, data: Buffer, position: number, reqIds: number[]): void {
    if (this.closed) {
      for (const id of reqIds) this.status(id, STATUS_CODE.FAILURE, "The session is closing.");
      return;
    }
    if (handle.failure) return this.failWrite(handle, reqIds);
    try {
      let written = 0;
      while (written < data.length) written += fs.writeSync(handle.fd, data, written, data.length - written, position + written);
      handle.size = Math.max(handle.size, position + data.length);
      if (handle.hash && position === handle.hashedUpTo) {
        handle.hash.update(data);
        handle.hashedUpTo += data.length;
      } else {
        handle.hash = undefined;
      }
      for (const id of reqIds) this.sftp.status(id, STATUS_CODE.OK);
    } catch (error) {
      handle.failure = error as Error;
      this.logger.error({ event: "sftp.write.failed", err: error, path: handle.path }, "write failed");
      this.failWrite(handle, reqIds);
    }
  }

  /** Answers writes to a failed upload; the client is told why once (it is recorded at close). */
  private failWrite(handle: WriteHandle, reqIds: number[]): void {
    const { code, message } = sftpStatusFor(handle.failure);
    if (!handle.told) {
      handle.told = true;
      this.tellClient(`${basename(handle.path)} refused: ${message}`);
    }
    for (const id of reqIds) this.status(id, code, message);
  }

  private async close(reqId: number, handleBuffer: Buffer): Promise<void> {
    const id = this.handleId(handleBuffer);
    const handle = this.handles.get(id);
    if (!handle) return this.status(reqId, STATUS_CODE.FAILURE, "That handle is not open.");
    this.handles.delete(id);
    if (handle.kind === "read") {
      await handle.file.close();
      return this.sftp.status(reqId, STATUS_CODE.OK);
    }
    if (handle.kind === "dir") return this.sftp.status(reqId, STATUS_CODE.OK);
    this.flush(handle);
    if (handle.failure) {
      fs.closeSync(handle.fd);
      await this.storage.discard(handle.tempPath);
      return this.refuse(reqId, handle, handle.failure, handle.told);
    }
    let fdOpen = true;
    let storedPath: string;
    try {
      await new Promise<void>((resolve, reject) => fs.fsync(handle.fd, (error) => (error ? reject(error) : resolve())));
      fdOpen = false;
      fs.closeSync(handle.fd);
      const size = fs.statSync(handle.tempPath).size;
      const sha256 = handle.hash && handle.hashedUpTo === size ? handle.hash.digest("hex") : await hashFile(handle.tempPath);
      storedPath = await this.deliveries.accept({
        districtId: this.context.districtId,
        path: handle.path,
        tempPath: handle.tempPath,
        size,
        sha256,
        clientIp: this.context.clientIp,
        clientVersion: this.context.clientVersion,
        startedAt: handle.startedAt,
      });
    } catch (error) {
      // Not stored (a full disk, the database unavailable): the client must not take it as received.
      if (fdOpen) fs.closeSync(handle.fd);
      await this.storage.discard(handle.tempPath);
      if (!isRosterdockError(error)) this.logger.error({ event: "sftp.upload.store_failed", err: error, path: handle.path }, "could not store an upload");
      return this.refuse(reqId, handle, error);
    }
    // Becomes visible under its name only now; an earlier file of that name is replaced. Renamed on
    // this thread, so that a delivery's close never sees the name change between its check and its
    // removal (LocalStorage.removeFromView).
    fs.renameSync(handle.tempPath, handle.realPath);
    if (handle.times) await utimes(handle.realPath, handle.times.atime, handle.times.mtime);
    this.sftp.status(reqId, STATUS_CODE.OK);
    await this.storage.incomingDone(handle.tempPath).catch(() => undefined);
    await this.deliveries
      .removeIfReceived(this.context.districtId, storedPath)
      .catch((error: unknown) => this.logger.error({ event: "delivery.remove_failed", err: error, path: handle.path }, "could not take a received file out of the folder"));
  }

  /**
   * Refuses an upload: recorded (against the night's delivery, which is then held), logged, told
   * to the client in its own words, and answered with the same message as the SFTP status.
   */
  private async refuse(reqId: number | undefined, upload: { path: string; size: number; startedAt: string }, error: unknown, told = false): Promise<void> {
    const { code, message, unexpected } = sftpStatusFor(error);
    if (unexpected) this.logger.error({ event: "sftp.request.failed", err: error, district: this.context.districtSlug }, "SFTP request failed");
    // A name refused for its length is recorded, logged and shown shortened.
    const path = shortPath(upload.path);
    const name = basename(upload.path) || upload.path;
    const file = name.length > 80 ? `${name.slice(0, 80)}…` : name;
    if (!told && reqId !== undefined) this.tellClient(`${file} refused: ${message}`);
    let recorded = false;
    try {
      recorded = true;
      await this.deliveries.recordRefused({
        districtId: this.context.districtId,
        path,
        size: upload.size,
        clientIp: this.context.clientIp,
        clientVersion: this.context.clientVersion,
        startedAt: upload.startedAt,
        reason: message,
      });
    } catch (recordError) {
      recorded = false;
      this.logger.error({ event: "sftp.upload.refusal_not_recorded", err: recordError, path }, "could not record a refused upload");
    }
    this.logger.warn(
      {
        event: "sftp.upload.refused",
        district: this.context.districtSlug,
        districtId: this.context.districtId,
        path,
        file,
        size: upload.size,
        code: isRosterdockError(error) ? error.code : ((error as NodeJS.ErrnoException | undefined)?.code ?? "ERR_INTERNAL"),
        reason: message,
        recorded,
      },
      "upload refused",
    );
    if (reqId !== undefined) this.status(reqId, code, message);
  }

  /**
   * Writes a line to the client's standard error on this channel. OpenSSH's sftp shows only the
   * status code of a failed request ("Failure"), never the server's message, but prints what the
   * server writes to the channel's stderr: that is how its user learns why an upload was refused.
   * Clients that show the status message (JSch, WinSCP) get it there as well. ssh2 gives the SFTP
   * channel no stderr stream, so the extended data is sent through its protocol, counted against
   * the client's window as the channel's own data is; without room in the window it is skipped.
   */
  private tellClient(line: string): void {
    const channel = this.sftp as unknown as {
      outgoing?: { id: number; state: string; window: number; packetSize: number };
      _protocol?: { channelExtData(id: number, data: Buffer, type: number): void };
    };
    const outgoing = channel.outgoing;
    const data = Buffer.from(`Rosterdock: ${line.replace(/[\r\n]+/g, " ")}\n`);
    if (this.closed || !outgoing || outgoing.state !== "open" || typeof channel._protocol?.channelExtData !== "function") return;
    if (data.length > outgoing.window || data.length > outgoing.packetSize) return;
    outgoing.window -= data.length;
    channel._protocol.channelExtData(outgoing.id, data, STDERR);
  }

  /** The client's path as it can be recorded, even one refused for being unusable (a NUL in it). */
  private recordablePath(filename: string): string {
    try {
      return this.jail.virtual(filename);
    } catch {
      return this.jail.virtual(filename.replace(/\0/g, "\uFFFD"));
    }
  }

  /** A district's archive found full (or pruned since) is logged once, by the session that finds it. */
  private logArchiveChange(archive: { usedBytes: number; quotaBytes: number; becameFull: boolean; freed: boolean }): void {
    const fields = { district: this.context.districtSlug, districtId: this.context.districtId, usedBytes: archive.usedBytes, quotaBytes: archive.quotaBytes };
    if (archive.becameFull) this.logger.warn({ event: "storage.archive.full", ...fields }, "the district's archive is full: its uploads are refused until old nights are pruned");
    if (archive.freed) this.logger.info({ event: "storage.archive.freed", ...fields }, "the district's archive is below its quota again");
  }

  /**
   * Refuses a request that is not an upload (a folder past a limit, a name too long): logged with
   * its reason, told to the client on stderr as upload refusals are, and answered with the message.
   */
  private refuseRequest(reqId: number, op: string, path: string, error: RosterdockError): void {
    const { code, message } = sftpStatusFor(error);
    this.logger.warn({ event: "sftp.request.refused", district: this.context.districtSlug, districtId: this.context.districtId, op, path: shortPath(path), code: error.code, reason: message }, "request refused");
    this.tellClient(`${op} ${shortPath(path, 80)} refused: ${message}`);
    this.status(reqId, code, message);
  }

  private uploadContext(handle: WriteHandle) {
    return {
      districtId: this.context.districtId,
      path: handle.path,
      size: handle.size,
      clientIp: this.context.clientIp,
      clientVersion: this.context.clientVersion,
      startedAt: handle.startedAt,
    };
  }

  /** The connection ended: files still open were cut off mid-transfer. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, handle] of this.handles) {
      this.handles.delete(id);
      if (handle.kind === "read") await handle.file.close().catch(() => undefined);
      if (handle.kind !== "write") continue;
      handle.pending = undefined;
      fs.closeSync(handle.fd);
      await this.storage.discard(handle.tempPath);
      // Refused mid-transfer, then the client hung up instead of closing it: still a refusal.
      if (handle.failure) {
        await this.refuse(undefined, handle, handle.failure, true).catch(() => undefined);
        continue;
      }
      await this.deliveries
        .recordPartial({ ...this.uploadContext(handle), reason: "The connection ended before the file was closed: the transfer was cut off." })
        .catch((error: unknown) => this.logger.error({ err: error }, "could not record a partial upload"));
    }
  }

  // ---- read ----------------------------------------------------------------------------

  private async read(reqId: number, handleBuffer: Buffer, offset: number, length: number): Promise<void> {
    const handle = this.lookup(handleBuffer);
    if (handle?.kind !== "read") return this.status(reqId, STATUS_CODE.FAILURE, "That handle is not open for reading.");
    const buffer = Buffer.allocUnsafe(Math.min(length, MAX_READ_BYTES));
    const { bytesRead } = await handle.file.read(buffer, 0, buffer.length, offset);
    if (bytesRead === 0) return this.sftp.status(reqId, STATUS_CODE.EOF);
    this.sftp.data(reqId, buffer.subarray(0, bytesRead));
  }

  // ---- attributes ----------------------------------------------------------------------

  private async fstat(reqId: number, handleBuffer: Buffer): Promise<void> {
    const handle = this.lookup(handleBuffer);
    if (!handle) return this.status(reqId, STATUS_CODE.FAILURE, "That handle is not open.");
    if (handle.kind === "write") {
      this.flush(handle);
      return this.sftp.attrs(reqId, toAttributes(fs.fstatSync(handle.fd)));
    }
    if (handle.kind === "read") return this.sftp.attrs(reqId, toAttributes(await handle.file.stat()));
    return this.sftp.attrs(reqId, toAttributes(await stat(handle.realPath)));
  }

  private async fsetstat(reqId: number, handleBuffer: Buffer, attrs: Attributes): Promise<void> {
    const handle = this.lookup(handleBuffer);
    if (!handle) return this.status(reqId, STATUS_CODE.FAILURE, "That handle is not open.");
    if (handle.kind === "write") {
      if (attrs.size !== undefined) {
        this.flush(handle);
        fs.ftruncateSync(handle.fd, attrs.size);
        handle.size = attrs.size;
        handle.hash = undefined;
      }
      if (attrs.mtime !== undefined) handle.times = { atime: attrs.atime ?? attrs.mtime, mtime: attrs.mtime };
    }
    // Permissions and ownership are the server's to decide; accepting them keeps clients quiet.
    this.sftp.status(reqId, STATUS_CODE.OK);
  }

  private async stat(reqId: number, clientPath: string): Promise<void> {
    const realPath = this.jail.real(clientPath);
    await this.jail.assertInside(realPath);
    const stats = await lstat(realPath);
    if (stats.isSymbolicLink()) throw new RosterdockError("ERR_PATH_OUTSIDE_JAIL");
    this.sftp.attrs(reqId, toAttributes(stats));
  }

  private async setstat(reqId: number, clientPath: string, attrs: Attributes): Promise<void> {
    const realPath = this.jail.real(clientPath);
    await this.jail.assertInside(realPath);
    await lstat(realPath);
    if (attrs.size !== undefined) return this.status(reqId, STATUS_CODE.OP_UNSUPPORTED, "Changing a file's size is not supported.");
    if (attrs.mtime !== undefined) await utimes(realPath, attrs.atime ?? attrs.mtime, attrs.mtime);
    this.sftp.status(reqId, STATUS_CODE.OK);
  }

  private async realpath(reqId: number, clientPath: string): Promise<void> {
    const path = this.jail.virtual(clientPath);
    const stats = await lstat(this.jail.real(path)).catch(() => undefined);
    this.sftp.name(reqId, [{ filename: path, longname: stats ? longName(path, stats) : path, attrs: stats ? toAttributes(stats) : ({} as Attributes) }]);
  }

  // ---- directories ---------------------------------------------------------------------

  private async opendir(reqId: number, clientPath: string): Promise<void> {
    const realPath = this.jail.real(clientPath);
    await this.jail.assertInside(realPath);
    const stats = await stat(realPath);
    if (!stats.isDirectory()) return this.status(reqId, STATUS_CODE.FAILURE, `${this.jail.virtual(clientPath)} is not a folder.`);
    this.sftp.handle(reqId, this.addHandle({ kind: "dir", path: this.jail.virtual(clientPath), realPath, names: undefined, position: 0 }));
  }

  private async readdir(reqId: number, handleBuffer: Buffer): Promise<void> {
    const handle = this.lookup(handleBuffer);
    if (handle?.kind !== "dir") return this.status(reqId, STATUS_CODE.FAILURE, "That handle is not an open folder.");
    if (!handle.names) handle.names = [".", "..", ...(await readdir(handle.realPath)).sort()];
    if (handle.position >= handle.names.length) return this.sftp.status(reqId, STATUS_CODE.EOF);
    const batch = handle.names.slice(handle.position, handle.position + READDIR_BATCH);
    handle.position += batch.length;
    const entries = [];
    for (const name of batch) {
      const path = name === ".." ? handle.realPath.slice(0, handle.realPath.lastIndexOf("/")) : name === "." ? handle.realPath : `${handle.realPath}/${name}`;
      const stats: Stats | undefined = await lstat(name === ".." && handle.path === "/" ? handle.realPath : path).catch(() => undefined);
      if (!stats || stats.isSymbolicLink()) continue;
      entries.push({ filename: name, longname: longName(name, stats), attrs: toAttributes(stats) });
    }
    this.sftp.name(reqId, entries);
  }

  private async mkdir(reqId: number, clientPath: string): Promise<void> {
    const path = this.jail.virtual(clientPath);
    try {
      assertPathFits(path, this.limits);
      assertDepthFits(path, folderDepth(path), this.limits);
    } catch (error) {
      if (isRosterdockError(error)) return this.refuseRequest(reqId, "mkdir", path, error);
      throw error;
    }
    const realPath = this.jail.real(clientPath);
    await this.jail.assertInside(realPath);
    if (await lstat(realPath).then(() => true, () => false)) return this.status(reqId, STATUS_CODE.FAILURE, `${path} already exists.`);
    try {
      await assertRoomForFolder(this.jail.root, this.limits);
    } catch (error) {
      if (isRosterdockError(error)) return this.refuseRequest(reqId, "mkdir", path, error);
      throw error;
    }
    await mkdir(realPath);
    this.sftp.status(reqId, STATUS_CODE.OK);
  }

  private async rmdir(reqId: number, clientPath: string): Promise<void> {
    if (this.jail.virtual(clientPath) === "/") return this.status(reqId, STATUS_CODE.PERMISSION_DENIED, "The top folder cannot be removed.");
    const realPath = this.jail.real(clientPath);
    await this.jail.assertInside(realPath);
    await rmdir(realPath);
    this.sftp.status(reqId, STATUS_CODE.OK);
  }

  private async remove(reqId: number, clientPath: string): Promise<void> {
    const realPath = this.jail.real(clientPath);
    await this.jail.assertInside(realPath);
    const stats = await lstat(realPath);
    if (stats.isDirectory()) return this.status(reqId, STATUS_CODE.FAILURE, `${this.jail.virtual(clientPath)} is a folder: remove it with rmdir.`);
    await unlink(realPath);
    this.sftp.status(reqId, STATUS_CODE.OK);
  }

  private async rename(reqId: number, fromPath: string, toPath: string): Promise<void> {
    const from = this.jail.real(fromPath);
    const to = this.jail.real(toPath);
    if (this.jail.virtual(fromPath) === "/") return this.status(reqId, STATUS_CODE.PERMISSION_DENIED, "The top folder cannot be renamed.");
    await this.jail.assertInside(from);
    await this.jail.assertInside(to);
    const source = await lstat(from);
    const target = await lstat(to).catch(() => undefined);
    const toVirtual = this.jail.virtual(toPath);
    try {
      assertPathFits(toVirtual, this.limits);
      // A folder moved deeper takes its own folders along.
      if (source.isDirectory()) assertDepthFits(toVirtual, folderDepth(toVirtual) + (await subtreeDepth(from, this.limits.maxFoldersPerDistrict)), this.limits);
    } catch (error) {
      if (isRosterdockError(error)) return this.refuseRequest(reqId, "rename", toVirtual, error);
      throw error;
    }
    if (target?.isDirectory()) return this.status(reqId, STATUS_CODE.FAILURE, `${this.jail.virtual(toPath)} is an existing folder.`);
    if (target && source.isDirectory()) return this.status(reqId, STATUS_CODE.FAILURE, `${this.jail.virtual(toPath)} already exists.`);
    fs.renameSync(from, to); // on this thread, as uploads are (see close)
    if (source.isFile()) await this.deliveries.renamed(this.context.districtId, this.jail.virtual(fromPath), this.jail.virtual(toPath));
    this.sftp.status(reqId, STATUS_CODE.OK);
  }

  // ---- helpers -------------------------------------------------------------------------

  /**
   * Files in the district's space, counted up to `stopAt`. Looks into at most as many folders as a
   * district may have, so a space filled with folders (before that limit, or by hand) costs an
   * upload no more than that.
   */
  private async countFiles(root: string, stopAt: number): Promise<number> {
    let count = 0;
    let folders = 0;
    const pending = [root];
    while (pending.length > 0 && count < stopAt) {
      const dir = pending.pop()!;
      // The top folder must be readable; one removed meanwhile further down simply holds nothing.
      const entries = dir === root ? await readdir(dir, { withFileTypes: true }) : await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (!entry.isDirectory()) count++;
        else if (folders++ < this.limits.maxFoldersPerDistrict) pending.push(`${dir}/${entry.name}`);
        if (count >= stopAt) break;
      }
    }
    return count;
  }

  private status(reqId: number, code: number, message: string): void {
    if (!this.closed) this.sftp.status(reqId, code, message);
  }

  private fail(reqId: number, error: unknown): void {
    const { code, message, unexpected } = sftpStatusFor(error);
    if (unexpected) this.logger.error({ event: "sftp.request.failed", err: error, district: this.context.districtSlug }, "SFTP request failed");
    this.status(reqId, code, message);
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}
