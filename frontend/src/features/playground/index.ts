// The playground feature: what routes may use.
export { Playground } from "./components/Playground";
