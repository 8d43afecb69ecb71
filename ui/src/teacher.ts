// The teacher console's entry point (teacher.html): the console itself is `teacher/console.ts`. Its
// platform is the build's (`@platform`: the browser's in ui/dist, the app's in ui/dist-app).
import "./style.css";
import { platform } from "@platform";
import { startTeacher } from "./teacher/console";

void startTeacher(platform).catch((e) => console.error(e));
