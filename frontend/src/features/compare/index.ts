// The compare feature: what routes may use.
export { Compare } from "./components/Compare";
