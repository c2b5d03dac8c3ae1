// The jobs feature: what routes may use.
export { JobDetail } from "./components/JobDetail";
export { JobForm, type DatasetPickerSlot } from "./components/JobForm";
export { JobsTable } from "./components/JobsTable";
