// The registry feature: what routes may use.
export { AdapterDetail } from "./components/AdapterDetail";
export { AdapterList } from "./components/AdapterList";
