import { posix, sep } from "node:path";
import { realpath } from "node:fs/promises";
import { RosterdockError } from "../errors.ts";

/**
 * A district's file space. Every client path, absolute or relative, with or without `..`,
 * is resolved against the jail's own `/`; nothing can name a place outside `root`.
 */
export class Jail {
  constructor(readonly root: string) {}

  /** The normalised path as the client sees it, always absolute (`/`, `/in/students.csv`). */
  virtual(clientPath: string): string {
    if (clientPath.includes("\0")) throw new RosterdockError("ERR_PATH_OUTSIDE_JAIL", "A path may not contain NUL.");
    // posix.resolve from "/" clamps every `..` at the jail's root.
    return posix.resolve("/", clientPath.replace(/\\/g, "/"));
  }

  /** The real path on disk for a client path. */
  real(clientPath: string): string {
    const v = this.virtual(clientPath);
    return v === "/" ? this.root : this.root + v.split("/").join(sep);
  }

  /**
   * Confirms that what exists at a real path (after following any link someone placed on
   * disk behind our back) is still inside the jail. Missing paths check their parent.
   */
  async assertInside(realPath: string): Promise<void> {
    let resolved: string;
    try {
      resolved = await realpath(realPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      const parent = realPath.slice(0, realPath.lastIndexOf(sep)) || sep;
      if (parent.length < this.root.length) throw new RosterdockError("ERR_PATH_OUTSIDE_JAIL");
      return this.assertInside(parent);
    }
    const root = await realpath(this.root);
    if (resolved !== root && !resolved.startsWith(root + sep)) throw new RosterdockError("ERR_PATH_OUTSIDE_JAIL");
  }
}
