import type { RecognisedFile } from "../intake/recognise-file.ts";
import type { EntityName, Scope } from "../spec/roster-spec.ts";

/** Which parts of the roster tonight's delivery speaks for; everything else is left as it is. */
export interface PresentParts {
  entities: Set<EntityName>;
  /** users.csv covers both scopes; students.* only students; teachers.*, staff.* only staff. */
  userScopes: Set<Scope>;
}

/** What a delivery's recognised files speak for. */
export function presentParts(files: readonly RecognisedFile[]): PresentParts {
  const entities = new Set<EntityName>();
  const userScopes = new Set<Scope>();
  for (const file of files) {
    entities.add(file.entity);
    if (file.entity !== "users") continue;
    if (file.stem === "students") userScopes.add("student");
    else if (file.stem === "teachers" || file.stem === "staff") userScopes.add("staff");
    else {
      userScopes.add("student");
      userScopes.add("staff");
    }
  }
  return { entities, userScopes };
}
