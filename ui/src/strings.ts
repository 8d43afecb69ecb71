// Every string the UI shows, in one place: English by default, Arabic for right-to-left classes.
// The language comes from `?lang=` or the browser; `dir` follows it.

const en = {
  joinWithName: "{name}. Type your name to join.",
  untrusted: "This is not the class you were given: its security certificate does not match. Ask your teacher for a new link.",
  startTitle: "How will you use Lectern on this device?",
  teach: "Teach a class",
  teachHint: "This device shows the lesson; students follow it.",
  joinAClass: "Join a class",
  joinAClassHint: "Follow your teacher's lesson on this device.",
  startingClass: "Starting your classroom…",
  classesNearby: "Classes on this network",
  lookingForClasses: "Looking for classes on this network…",
  noClassesYet: "No class found yet. Is the teacher's Lectern open? You can also paste the join link.",
  pasteLink: "Join link",
  openLink: "Open link",
  badLink: "That is not a Lectern join link.",
  changeMode: "Teach or join?",
  tapToJoin: "Tap to join",
  appName: "Lectern",
  joinTitle: "Join your class",
  joinHint: "Enter the code your teacher shows, and your name.",
  code: "Class code",
  name: "Your name",
  join: "Join",
  joining: "Joining…",
  badCode: "That code did not work. Check it with your teacher.",
  needName: "Please type your name.",
  needCode: "The code has 6 digits.",
  connected: "Connected",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  lastSync: "last update {time}",
  ended: "The lesson has ended. Thank you!",
  kicked: "Your teacher removed you from this lesson.",
  replaced: "This lesson is open on another tab or device.",
  stopped: "Disconnected.",
  raiseHand: "Raise hand",
  lowerHand: "Lower hand",
  returnToTeacher: "Return to teacher",
  freeBrowsing: "You are browsing freely",
  teacherOffline: "The teacher is offline; you can browse freely.",
  following: "Following the teacher",
  noDocument: "Waiting for the teacher to open a document…",
  loadingDoc: "Loading the document…",
  page: "Page {page} of {pages}",
  prevPage: "Previous page",
  nextPage: "Next page",
  notice: "Notice",
  consoleTitle: "Teacher console",
  joinCode: "Join code",
  joinLink: "Join link",
  qrAlt: "QR code for the join link",
  copyLink: "Copy link",
  copied: "Copied",
  openDocument: "Open a PDF",
  documents: "Documents",
  chooseDocument: "Choose a document",
  uploading: "Uploading…",
  uploadFailed: "The upload failed: {reason}",
  pointer: "Laser pointer",
  highlight: "Highlight",
  clearHighlight: "Clear highlight",
  follow: "Follow",
  free: "Free",
  modeLabel: "Students' view",
  noticePlaceholder: "A short notice for everyone (280 characters)",
  sendNotice: "Show notice",
  clearNotice: "Clear",
  students: "Students",
  noStudents: "No students yet. Share the code or the QR code.",
  online: "online",
  away: "away",
  local: "in class",
  remote: "remote",
  onPage: "on the current page",
  behind: "behind by {n}",
  notYet: "not synced yet",
  rtt: "{ms} ms",
  hand: "Hand raised",
  kick: "Remove",
  kickConfirm: "Remove {name} from this lesson?",
  endLesson: "End lesson",
  endConfirm: "End the lesson for everyone?",
  history: "Session history",
  attendance: "Attendance (CSV)",
  newLesson: "New lesson",
  started: "Started",
  lessonEnded: "Lesson ended.",
  needKey: "Open the console with the link Lectern printed when it started (it carries the teacher key).",
  viewing: "viewing page {page}",
  language: "العربية",
} as const;

/** A key of the string table. */
export type StringKey = keyof typeof en;

const ar: Record<StringKey, string> = {
  joinWithName: "{name}. اكتب اسمك للانضمام.",
  untrusted: "هذا ليس الصف الذي أُعطيت رابطه: شهادته الأمنية لا تطابق. اطلب من معلمك رابطًا جديدًا.",
  startTitle: "كيف ستستخدم ليكترن على هذا الجهاز؟",
  teach: "تدريس صف",
  teachHint: "هذا الجهاز يعرض الدرس، والطلاب يتابعونه.",
  joinAClass: "الانضمام إلى صف",
  joinAClassHint: "تابع درس معلمك على هذا الجهاز.",
  startingClass: "جارٍ تشغيل صفك…",
  classesNearby: "الصفوف على هذه الشبكة",
  lookingForClasses: "جارٍ البحث عن صفوف على هذه الشبكة…",
  noClassesYet: "لم يُعثر على صف بعد. هل ليكترن المعلم مفتوح؟ يمكنك أيضًا لصق رابط الانضمام.",
  pasteLink: "رابط الانضمام",
  openLink: "افتح الرابط",
  badLink: "هذا ليس رابط انضمام إلى ليكترن.",
  changeMode: "تدريس أم انضمام؟",
  tapToJoin: "اضغط للانضمام",
  appName: "ليكترن",
  joinTitle: "انضم إلى صفك",
  joinHint: "أدخل الرمز الذي يعرضه معلمك، واسمك.",
  code: "رمز الصف",
  name: "اسمك",
  join: "انضمام",
  joining: "جارٍ الانضمام…",
  badCode: "هذا الرمز غير صحيح. تحقق منه مع معلمك.",
  needName: "من فضلك اكتب اسمك.",
  needCode: "الرمز من ٦ أرقام.",
  connected: "متصل",
  connecting: "جارٍ الاتصال…",
  reconnecting: "جارٍ إعادة الاتصال…",
  offline: "غير متصل",
  lastSync: "آخر تحديث {time}",
  ended: "انتهى الدرس. شكرًا لك!",
  kicked: "أخرجك المعلم من هذا الدرس.",
  replaced: "هذا الدرس مفتوح في نافذة أو جهاز آخر.",
  stopped: "انقطع الاتصال.",
  raiseHand: "ارفع يدك",
  lowerHand: "أنزل يدك",
  returnToTeacher: "العودة إلى المعلم",
  freeBrowsing: "أنت تتصفح بحرية",
  teacherOffline: "المعلم غير متصل؛ يمكنك التصفح بحرية.",
  following: "تتابع المعلم",
  noDocument: "بانتظار أن يفتح المعلم مستندًا…",
  loadingDoc: "جارٍ تحميل المستند…",
  page: "صفحة {page} من {pages}",
  prevPage: "الصفحة السابقة",
  nextPage: "الصفحة التالية",
  notice: "تنبيه",
  consoleTitle: "لوحة المعلم",
  joinCode: "رمز الانضمام",
  joinLink: "رابط الانضمام",
  qrAlt: "رمز QR لرابط الانضمام",
  copyLink: "نسخ الرابط",
  copied: "تم النسخ",
  openDocument: "افتح ملف PDF",
  documents: "المستندات",
  chooseDocument: "اختر مستندًا",
  uploading: "جارٍ الرفع…",
  uploadFailed: "فشل الرفع: {reason}",
  pointer: "مؤشر الليزر",
  highlight: "تظليل",
  clearHighlight: "إزالة التظليل",
  follow: "متابعة",
  free: "حر",
  modeLabel: "عرض الطلاب",
  noticePlaceholder: "تنبيه قصير للجميع (٢٨٠ حرفًا)",
  sendNotice: "اعرض التنبيه",
  clearNotice: "مسح",
  students: "الطلاب",
  noStudents: "لا يوجد طلاب بعد. شارك الرمز أو رمز QR.",
  online: "متصل",
  away: "غائب",
  local: "في الصف",
  remote: "عن بُعد",
  onPage: "على الصفحة الحالية",
  behind: "متأخر بـ {n}",
  notYet: "لم يتزامن بعد",
  rtt: "{ms} مللي ثانية",
  hand: "رفع يده",
  kick: "إخراج",
  kickConfirm: "إخراج {name} من هذا الدرس؟",
  endLesson: "إنهاء الدرس",
  endConfirm: "إنهاء الدرس للجميع؟",
  history: "سجل الحصص",
  attendance: "الحضور (CSV)",
  newLesson: "درس جديد",
  started: "بدأ",
  lessonEnded: "انتهى الدرس.",
  needKey: "افتح اللوحة بالرابط الذي طبعه ليكترن عند بدئه (يحمل مفتاح المعلم).",
  viewing: "يعرض صفحة {page}",
  language: "English",
};

/** The languages the UI speaks. */
export type Lang = "en" | "ar";

const tables: Record<Lang, Record<StringKey, string>> = { en, ar };

/** The language for this page: `?lang=`, then a stored choice, then the browser's. */
export function pickLang(search: string, stored: string | null, browser: readonly string[]): Lang {
  const asked = new URLSearchParams(search).get("lang") ?? stored;
  if (asked === "ar" || asked === "en") return asked;
  return browser.some((l) => l.toLowerCase().startsWith("ar")) ? "ar" : "en";
}

let current: Lang = "en";

/** Sets the language and the document's direction. */
export function setLang(lang: Lang): void {
  current = lang;
  if (typeof document !== "undefined") {
    document.documentElement.lang = lang;
    document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
  }
}

/** The current language. */
export function lang(): Lang {
  return current;
}

/** A string in the current language, with `{name}` placeholders filled. */
export function t(key: StringKey, vars: Record<string, string | number> = {}): string {
  const text = tables[current][key] ?? en[key];
  return text.replace(/\{(\w+)\}/g, (_, k: string) => String(vars[k] ?? `{${k}}`));
}

/** Both tables, for the test that checks every key is translated. */
export const TABLES = tables;
