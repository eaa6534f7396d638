import { access, constants } from "node:fs/promises";
import { RosterdockError } from "../errors.ts";

/** The Debian package that provides the browser PDFs are printed with. */
export const CHROMIUM_PACKAGE = "chromium";

/**
 * Prints a self-contained HTML page to a Letter PDF with the system's Chromium (never a
 * downloaded browser). One browser per PDF, always closed: guides are printed rarely.
 */
export async function printGuidePdf(html: string, chromiumPath: string): Promise<Buffer> {
  try {
    await access(chromiumPath, constants.X_OK);
  } catch {
    throw chromiumMissing(chromiumPath);
  }
  let browser;
  try {
    // Loaded here, not at the top: every CLI command and server start would pay for it (~0.5 s).
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, timeout: 60_000 });
  } catch (error) {
    throw new RosterdockError(
      "ERR_PDF_FAILED",
      `Chromium at ${chromiumPath} did not start, so the PDF could not be printed (${firstLine(error)}). Check Debian's \`${CHROMIUM_PACKAGE}\` package, or use --format html.`,
      { chromiumPath },
      { cause: error },
    );
  }
  try {
    const context = await browser.newContext({ javaScriptEnabled: false, offline: true });
    const page = await context.newPage();
    await page.setContent(html, { waitUntil: "load" });
    return await page.pdf({ format: "Letter", printBackground: true, preferCSSPageSize: true });
  } catch (error) {
    throw new RosterdockError("ERR_PDF_FAILED", `Chromium could not print the PDF (${firstLine(error)}).`, { chromiumPath }, { cause: error });
  } finally {
    await browser.close();
  }
}

function chromiumMissing(chromiumPath: string): RosterdockError {
  return new RosterdockError(
    "ERR_CHROMIUM_MISSING",
    `Printing a PDF needs Chromium, and there is none at ${chromiumPath}: install Debian's \`${CHROMIUM_PACKAGE}\` package (apt-get install ${CHROMIUM_PACKAGE}) or set ROSTERDOCK_CHROMIUM_PATH; --format html and md need no browser.`,
    { chromiumPath, package: CHROMIUM_PACKAGE },
  );
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n", 1)[0]!.slice(0, 300);
}
