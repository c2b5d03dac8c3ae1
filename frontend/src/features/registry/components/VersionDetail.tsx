import { Link } from "react-router";
import { withKey } from "@/api/auth";
import { downloadUrl } from "@/api/registry";
import { ErrorBanner } from "@/components/ErrorBanner";
import { JsonView } from "@/components/JsonView";
import { StatusBadge } from "@/components/StatusBadge";
import { formatNumber } from "@/lib/format";
import { useAdapterVersion, useMergeVersion } from "../api/hooks";
import { ServingFlags } from "./ServingFlags";
import { WarningList } from "./Warnings";

type Dataset = { role?: string; file_id?: string; format?: string; num_examples?: number; sha256?: string };

function Facts({ lineage }: { lineage: Record<string, unknown> }) {
  const pick = (k: string) => lineage[k];
  const base = pick("base_model") as Record<string, unknown> | string | undefined;
  const datasets = (pick("datasets") ?? pick("data")) as Dataset[] | undefined;
  const metrics = pick("metrics") as Record<string, unknown> | undefined;
  const rows: [string, React.ReactNode][] = [];
  if (typeof pick("job_id") === "string") rows.push(["Job", <Link to={`/jobs/${pick("job_id")}`}>{String(pick("job_id"))}</Link>]);
  if (base) rows.push(["Base model", typeof base === "string" ? base : `${base.name ?? base.id ?? ""}${base.revision ? ` (revision ${base.revision})` : ""}`]);
  if (pick("seed") !== undefined) rows.push(["Seed", String(pick("seed"))]);
  if (Array.isArray(datasets)) {
    rows.push(["Datasets", datasets.map((d, i) => (
      <div key={i}>{d.role ?? "data"}: <code>{d.file_id ?? "?"}</code> {d.format}{d.num_examples != null && `, ${d.num_examples} examples`}
        {d.sha256 && <span className="muted small"> · sha256 {d.sha256.slice(0, 12)}…</span>}</div>
    ))]);
  }
  if (metrics) {
    rows.push(["Metrics", Object.entries(metrics).filter(([, v]) => v != null)
      .map(([k, v]) => `${k.replace(/_/g, " ")} ${typeof v === "number" ? formatNumber(v) : String(v)}`).join(" · ")]);
  }
  if (rows.length === 0) return null;
  return <dl className="facts">{rows.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}</dl>;
}

/** A version's lineage, serving flags, downloads and merge. */
export function VersionDetail({ name, version }: { name: string; version: number }) {
  const v = useAdapterVersion(name, version);
  const merge = useMergeVersion(name);
  if (v.isError) return <ErrorBanner error={v.error} title={`Version ${version}`} />;
  if (v.isPending) return <p className="muted">Loading version {version}…</p>;
  const d = v.data;
  const ready = d.status === "ready";
  const mergeStatus = d.merge?.status;
  return (
    <section className="panel" aria-label={`Version ${version}`}>
      <div className="panel-head">
        <h3>{d.model} <StatusBadge status={d.status} /></h3>
        <div className="controls">
          <a className={`button small${ready ? "" : " disabled"}`} href={ready ? downloadUrl(name, version) : undefined} download>Download .tar.gz</a>
          <a className={`button small${ready ? "" : " disabled"}`} href={ready ? downloadUrl(name, version, "zip") : undefined} download>.zip</a>
          <Link className="button small" to={`/playground?model=${encodeURIComponent(d.model)}`}>Chat</Link>
          {(d.mergeable || !ready) && (
            <button type="button" className="button small" disabled={!d.mergeable || merge.isPending || mergeStatus === "queued" || mergeStatus === "running"}
                    onClick={() => merge.mutate(version)}>
              {mergeStatus === "succeeded" ? "Merge again" : "Merge into base"}
            </button>
          )}
        </div>
      </div>
      {ready && !d.mergeable && d.merge_unavailable_reason && <p className="muted small" aria-label="Merge unavailable">No merge: {d.merge_unavailable_reason}</p>}
      <WarningList warnings={d.warnings ?? []} />
      <ErrorBanner error={merge.error} title="Merge" />
      {d.error && <div className="banner banner-error">{String(d.error.message ?? JSON.stringify(d.error))}</div>}
      {mergeStatus && (
        <p>Merge: <StatusBadge status={mergeStatus} />{" "}
          {mergeStatus === "succeeded" && <a href={d.merge?.download ? withKey(d.merge.download) : downloadUrl(name, version, "tar.gz", "merged")} download>download the merged model</a>}
          {d.merge?.error && <span className="field-error"> {String(d.merge.error.message ?? "")}</span>}
        </p>
      )}
      <p className="muted">Method {d.method}{d.artifact ? ` (${d.artifact})` : ""} on {d.base_model}{d.aliases.length ? ` · aliases ${d.aliases.map((a) => `@${a}`).join(", ")}` : ""}</p>
      {d.flags && (
        <>
          <h4>Serving elsewhere</h4>
          <ServingFlags flags={d.flags} />
        </>
      )}
      {d.lineage && (
        <>
          <h4>Lineage</h4>
          <Facts lineage={d.lineage} />
          <details><summary>Full lineage (studio.json)</summary><JsonView value={d.lineage} label="Lineage" /></details>
        </>
      )}
    </section>
  );
}
