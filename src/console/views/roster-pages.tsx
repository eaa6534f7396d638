import type { UserClass, UserDetail, UserRow } from "../roster-browser.ts";
import { Page, html, type Viewer } from "./layout.tsx";

function usersPath(slug: string): string {
  return `/districts/${encodeURIComponent(slug)}/users`;
}

function userPath(slug: string, userKey: string): string {
  return `${usersPath(slug)}/${encodeURIComponent(userKey)}`;
}

function fullName(u: { firstName: string; lastName: string }): string {
  return `${u.firstName} ${u.lastName}`;
}

/** The roster search box: a plain GET form, so a search is a link. */
export function RosterSearch(props: { slug: string; query?: string }): JSX.Element {
  return (
    <form method="get" action={usersPath(props.slug)} class="inline" role="search">
      <label for="roster-q">Search users</label>
      <input id="roster-q" name="q" type="search" value={props.query ?? ""} aria-describedby="roster-hint" />
      <button type="submit">Search</button>
      <p id="roster-hint" class="hint">
        A name or its beginning ("lov", "ada lov"), or an id: a sourcedId such as student-1001, or PowerSchool's student or staff ID.
      </p>
    </form>
  );
}

export interface RosterSearchPageProps {
  viewer: Viewer;
  slug: string;
  districtName: string;
  query: string;
  page: number;
  users: UserRow[];
  more: boolean;
}

/** `/districts/{slug}/users?q=`: the users matching a search, a page at a time. */
export function RosterSearchPage(props: RosterSearchPageProps): string {
  const page = (n: number) => `${usersPath(props.slug)}?${new URLSearchParams({ q: props.query, page: String(n) }).toString()}`;
  return html(
    <Page title={`Users of ${props.districtName}`} viewer={props.viewer}>
      <p>
        <a href={`/districts/${encodeURIComponent(props.slug)}`} safe>
          {`Back to ${props.districtName}`}
        </a>
      </p>
      <RosterSearch slug={props.slug} query={props.query} />
      {props.query.trim() === "" ? (
        <p>Type a name or an id to find a user.</p>
      ) : props.users.length === 0 ? (
        <p role="status" safe>{`No user matches "${props.query}".`}</p>
      ) : (
        <>
          <table class="users">
            <caption safe>{`Users matching "${props.query}", page ${props.page}`}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">sourcedId</th>
                <th scope="col">PowerSchool ID</th>
                <th scope="col">School</th>
                <th scope="col">Grade</th>
              </tr>
            </thead>
            <tbody>
              {props.users.map((u) => (
                <tr>
                  <td>
                    <a href={userPath(props.slug, u.userKey)} safe>
                      {fullName(u)}
                    </a>
                  </td>
                  <td safe>{u.role}</td>
                  <td>
                    <code safe>{u.userKey}</code>
                  </td>
                  <td safe>{u.districtUserId}</td>
                  <td safe>{u.schoolId ?? ""}</td>
                  <td safe>{u.grade ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav class="pager" aria-label="Pages of users">
            {props.page > 1 ? <a href={page(props.page - 1)}>Previous page</a> : ""}
            {props.more ? <a href={page(props.page + 1)}>Next page</a> : ""}
          </nav>
        </>
      )}
    </Page>,
  );
}

/** `/districts/{slug}/users/{sourcedId}`: one user as the roster holds them, and their classes. */
export function UserPage(props: { viewer: Viewer; slug: string; districtName: string; user: UserDetail; classes: UserClass[] }): string {
  const u = props.user;
  const student = u.scope === "student";
  const facts: [string, string | null][] = [
    ["sourcedId", u.userKey],
    ["Role", u.role],
    ["PowerSchool ID", u.districtUserId],
    [student ? "Student number" : "Teacher number", student ? u.studentNumber : u.teacherNumber],
    ["Middle name", u.middleName],
    ["Email", u.email],
    ["Username", u.username],
    ["Schools", u.schoolIds.join(", ")],
    ["Grade", u.grade],
  ];
  return html(
    <Page title={fullName(u)} viewer={props.viewer}>
      <p>
        <a href={`/districts/${encodeURIComponent(props.slug)}`} safe>
          {props.districtName}
        </a>
        {" · "}
        <a href={usersPath(props.slug)}>Search users</a>
      </p>
      <dl class="facts">
        {facts
          .filter(([, value]) => value !== null && value !== "")
          .map(([label, value]) => (
            <>
              <dt safe>{label}</dt>
              <dd safe>{value}</dd>
            </>
          ))}
        <dt>Last changed by</dt>
        <dd>
          <a href={`/syncs/${u.lastSyncId}`}>Sync {String(u.lastSyncId)}</a>
        </dd>
      </dl>
      <h2 id="classes">{student ? "Enrolled in" : "Teaches"}</h2>
      {props.classes.length === 0 ? (
        <p>{student ? "No enrollment." : "No class."}</p>
      ) : (
        <table class="classes">
          <caption class="visually-hidden">{student ? "The student's classes" : "The teacher's classes"}</caption>
          <thead>
            <tr>
              <th scope="col">Class</th>
              <th scope="col">Class id</th>
              <th scope="col">Course</th>
              <th scope="col">School</th>
              <th scope="col">Term</th>
              <th scope="col">Period</th>
              {student ? <th scope="col">Teacher</th> : ""}
            </tr>
          </thead>
          <tbody>
            {props.classes.map((c) => (
              <tr>
                <td safe>{c.className}</td>
                <td>
                  <code safe>{c.classId}</code>
                </td>
                <td safe>{c.courseName ?? ""}</td>
                <td safe>{c.schoolName ?? ""}</td>
                <td safe>{c.termName ?? ""}</td>
                <td safe>{c.period ?? ""}</td>
                {c.teacher ? (
                  <td>
                    <a href={userPath(props.slug, c.teacher.userKey)} safe>
                      {c.teacher.name}
                    </a>
                  </td>
                ) : (
                  ""
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>,
  );
}
