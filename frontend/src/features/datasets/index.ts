// The datasets feature: what routes may use.
export { DatasetDetail } from "./components/DatasetDetail";
export { DatasetList } from "./components/DatasetList";
export { DatasetPicker } from "./components/DatasetPicker";
export { UploadDropZone } from "./components/UploadDropZone";
export { newJobLink, stageForFormat } from "./stage";
