// The student view's entry point (index.html): the view itself is `student/view.ts`. Its
// platform is the build's (`@platform`: the browser's in ui/dist, the app's in ui/dist-app).
import "./style.css";
import { platform } from "@platform";
import { startStudent } from "./student/view";

void startStudent(platform).catch((e) => console.error(e));
