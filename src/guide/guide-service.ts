import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { HostKeyView } from "../districts/connection-details.ts";
import type { DistrictService } from "../districts/district-service.ts";
import type { ServerAddress } from "../settings/server-settings.ts";
import { printGuidePdf } from "./print-guide-pdf.ts";
import { renderGuideHtml } from "./render-guide-html.ts";
import { renderGuideMarkdown } from "./render-guide-markdown.ts";
import { buildSetupGuide } from "./setup-guide.ts";
import type { GuideFormat, SetupGuide } from "./setup-guide.ts";

export interface RenderedGuide {
  format: GuideFormat;
  body: Buffer;
  contentType: string;
  /** A safe download name: `setup-guide-<slug>.<ext>`. */
  fileName: string;
}

const CONTENT_TYPES: Record<GuideFormat, string> = {
  html: "text/html; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  pdf: "application/pdf",
};

/** Each district's PowerSchool setup guide, from the roster spec and the district's own values. */
export class GuideService {
  /** PDFs are printed one at a time: each takes a whole Chromium, and 2 cores are shared with SFTP and syncs. */
  private printing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      config: Pick<Config, "quietSeconds" | "chromiumPath" | "publicHost" | "sftpPort" | "publicUrl">;
      districts: Pick<DistrictService, "show">;
      address: () => Promise<ServerAddress>;
      hostKeys: () => Promise<readonly HostKeyView[]>;
      clock: Clock;
    },
  ) {}

  async build(slug: string): Promise<SetupGuide> {
    const district = await this.deps.districts.show(slug);
    const address = await this.deps.address();
    const hostKeys = (await this.deps.hostKeys()).map((k) => ({ algorithm: k.algorithm, sha256: k.sha256, md5: k.md5 }));
    return buildSetupGuide({
      district: { slug: district.slug, name: district.name, sftpUsername: district.sftpUsername, dateFormat: district.dateFormat },
      sftp: { host: address.sftpHost, port: address.sftpPort },
      hostKeys,
      quietSeconds: this.deps.config.quietSeconds,
      generatedAt: this.deps.clock.now().toISOString().slice(0, 10),
    });
  }

  async render(slug: string, format: GuideFormat): Promise<RenderedGuide> {
    const guide = await this.build(slug);
    const body =
      format === "md"
        ? Buffer.from(renderGuideMarkdown(guide), "utf8")
        : format === "html"
          ? Buffer.from(renderGuideHtml(guide), "utf8")
          : await this.printOneAtATime(renderGuideHtml(guide));
    return { format, body, contentType: CONTENT_TYPES[format], fileName: `setup-guide-${guide.districtSlug}.${format}` };
  }

  private printOneAtATime(html: string): Promise<Buffer> {
    const printed = this.printing.then(() => printGuidePdf(html, this.deps.config.chromiumPath));
    this.printing = printed.catch(() => undefined);
    return printed;
  }
}
