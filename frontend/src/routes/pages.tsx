// Routes compose the features; features never import each other.
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { Compare } from "@/features/compare";
import { DatasetDetail, DatasetList, DatasetPicker, UploadDropZone } from "@/features/datasets";
import { JobDetail, JobForm, JobsTable } from "@/features/jobs";
import { Playground } from "@/features/playground";
import { AdapterDetail, AdapterList } from "@/features/registry";

export function JobsPage() {
  return (
    <>
      <div className="page-head"><h1>Fine-tuning jobs</h1></div>
      <JobsTable />
    </>
  );
}

export function NewJobPage() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  return (
    <>
      <div className="page-head"><h1>New fine-tune</h1></div>
      <JobForm initialTrainingFile={params.get("training_file") ?? ""} initialStage={params.get("stage") ?? undefined} renderDatasetPicker={(slot) => <DatasetPicker {...slot} />} onCreated={(job) => navigate(`/jobs/${job.id}`)} />
    </>
  );
}

export function JobPage() {
  const { id } = useParams();
  return (
    <>
      <p className="crumbs"><Link to="/jobs">← Jobs</Link></p>
      <JobDetail key={id} id={id!} />
    </>
  );
}

export function DatasetsPage() {
  const { id } = useParams();
  const navigate = useNavigate();
  return (
    <>
      <div className="page-head"><h1>Datasets</h1></div>
      <UploadDropZone onUploaded={(file) => navigate(`/datasets/${file.id}`)} />
      <div className={id ? "split" : ""}>
        <DatasetList selected={id} onSelect={(fileId) => navigate(`/datasets/${fileId}`)} />
        {id && <DatasetDetail key={id} id={id} onDeleted={() => navigate("/datasets")} />}
      </div>
    </>
  );
}

export function RegistryPage() {
  const { name } = useParams();
  return (
    <>
      <div className="page-head"><h1>Adapter registry</h1></div>
      <AdapterList selected={name} />
      {name && <AdapterDetail key={name} name={name} />}
    </>
  );
}

export function PlaygroundPage() {
  const [params] = useSearchParams();
  return (
    <>
      <div className="page-head"><h1>Playground</h1></div>
      <Playground initialModel={params.get("model") ?? undefined} />
    </>
  );
}

export function ComparePage() {
  const [params, setParams] = useSearchParams();
  const selected = (params.get("runs") ?? "").split(",").filter(Boolean);
  return (
    <>
      <div className="page-head"><h1>Compare runs</h1></div>
      <Compare selected={selected} onSelect={(ids) => setParams(ids.length ? { runs: ids.join(",") } : {}, { replace: true })} />
    </>
  );
}

export function NotFoundPage() {
  return (
    <div className="empty">
      <h1>Not found</h1>
      <p>No page here. <Link to="/jobs">Go to the jobs</Link>.</p>
    </div>
  );
}
