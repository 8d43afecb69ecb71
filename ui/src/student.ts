// The student view's entry point (index.html): the view itself is `student/view.ts`.
import "./style.css";
import { platform } from "./platform";
import { startStudent } from "./student/view";

void startStudent(platform).catch((e) => console.error(e));
