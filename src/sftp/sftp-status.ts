import ssh2 from "ssh2";
import { isRosterdockError, type ErrorCategory } from "../errors.ts";

const { STATUS_CODE } = ssh2.utils.sftp;

const BY_CATEGORY: Record<ErrorCategory, number> = {
  invalid_input: STATUS_CODE.FAILURE,
  not_found: STATUS_CODE.NO_SUCH_FILE,
  conflict: STATUS_CODE.FAILURE,
  unauthenticated: STATUS_CODE.PERMISSION_DENIED,
  forbidden: STATUS_CODE.PERMISSION_DENIED,
  limit: STATUS_CODE.FAILURE,
  throttled: STATUS_CODE.FAILURE,
  unavailable: STATUS_CODE.FAILURE,
  internal: STATUS_CODE.FAILURE,
};

const BY_ERRNO: Record<string, [number, string]> = {
  ENOENT: [STATUS_CODE.NO_SUCH_FILE, "No such file or folder."],
  EEXIST: [STATUS_CODE.FAILURE, "That name already exists."],
  ENOTEMPTY: [STATUS_CODE.FAILURE, "The folder is not empty."],
  ENOTDIR: [STATUS_CODE.NO_SUCH_FILE, "A part of the path is not a folder."],
  EISDIR: [STATUS_CODE.FAILURE, "That is a folder."],
  EACCES: [STATUS_CODE.PERMISSION_DENIED, "Permission denied."],
  ENOSPC: [STATUS_CODE.FAILURE, "The server is out of disk space; try again later."],
  EMFILE: [STATUS_CODE.FAILURE, "The server is busy: too many files are open; try again later."],
  ENFILE: [STATUS_CODE.FAILURE, "The server is busy: too many files are open; try again later."],
  // Names are checked against ROSTERDOCK_MAX_NAME_BYTES first; this is for reads of names no one could have made.
  ENAMETOOLONG: [STATUS_CODE.FAILURE, "Name too long for the server's file system."],
};

/** The one place errors become SFTP status codes. */
export function sftpStatusFor(error: unknown): { code: number; message: string; unexpected: boolean } {
  if (isRosterdockError(error)) return { code: BY_CATEGORY[error.category], message: error.message, unexpected: error.category === "internal" };
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  const known = errno ? BY_ERRNO[errno] : undefined;
  if (known) return { code: known[0], message: known[1], unexpected: errno === "ENOSPC" || errno === "EMFILE" || errno === "ENFILE" };
  return { code: STATUS_CODE.FAILURE, message: "The server could not complete the request.", unexpected: true };
}
