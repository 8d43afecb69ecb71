// The teacher console's entry point (teacher.html): the console itself is `teacher/console.ts`.
import "./style.css";
import { platform } from "./platform";
import { startTeacher } from "./teacher/console";

void startTeacher(platform).catch((e) => console.error(e));
