/** Districts the OneRoster conformance tests (1.2 and 1.1) roster beside the demo data. */

/** Staff the demo generator has no examples of: administrators at district and school level, and an aide. */
export const EXTRA_STAFF = [
  "district_user_id,first_name,last_name,role,school_id,teacher_number,email",
  "990001,Dana,Okafor,administrator,,A-1,dana.okafor@example.org",
  "990002,Lars,Åberg,administrator,101,A-2,lars.aberg@example.org",
  "990003,Mina,Sato,aide,102,A-3,mina.sato@example.org",
].join("\n");

/**
 * A small district that does not number its terms the PowerSchool way: a school year, a quarter and
 * a semester told apart by their dates, and classes without a term. (A class naming a term the
 * terms file lacks is rejected by the sync, so it never reaches the API.)
 */
export const HAND_WRITTEN: Record<string, string> = {
  "schools.csv": ["school_id,school_name", "101,Harbor Elementary", "102,Hillside Middle"].join("\n"),
  "courses.csv": ["course_id,course_name", "M1,Mathematics", "R1,Reading"].join("\n"),
  "teachers.csv": ["district_user_id,first_name,last_name,school_id,teacher_number", "501,Ana,Lima,101,T1", "502,Ana,Lima,102,T1", "503,Ben,Kowalski,102,T2"].join("\n"),
  "students.csv": ["district_user_id,first_name,last_name,school_id,grade", "1,Zoë,Ødegaard,101,3", "2,Émile,Nguyen,101,3", "3,Ivan,Ng,102,7"].join("\n"),
  "terms.csv": [
    "term_id,term_name,start_date,end_date,school_id",
    "Y27,Year 2026-27,2026-08-24,2027-06-11,101",
    "Q1,Quarter 1,2026-08-24,2026-10-30,101",
    "S2,Spring semester,2027-01-19,2027-06-11,101",
    "Y27,Year 2026-27,2026-08-24,2027-06-11,102",
  ].join("\n"),
  "classes.csv": [
    "class_id,class_name,school_id,course_id,teacher_id,term_id",
    "C1,Math 3,101,M1,501,Q1",
    "C2,Reading 3,101,R1,501,S2",
    "C3,Math 7,102,M1,502,",
    "C4,Reading 7,102,R1,503,",
  ].join("\n"),
  "enrollments.csv": ["class_id,student_id", "C1,1", "C1,2", "C2,1", "C3,3", "C4,3"].join("\n"),
};
