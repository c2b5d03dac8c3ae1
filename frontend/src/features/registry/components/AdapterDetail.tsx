import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { useAdapter } from "@/api/queries";
import { ErrorBanner } from "@/components/ErrorBanner";
import { StatusBadge } from "@/components/StatusBadge";
import { formatTime } from "@/lib/format";
import { useDeleteAdapter, useDeleteVersion, useSetAlias } from "../api/hooks";
import { VersionDetail } from "./VersionDetail";
import { WarningBadge } from "./Warnings";

type Flagged = Record<number, string[]>;

function AliasForm({ name, versions, flagged }: { name: string; versions: number[]; flagged: Flagged }) {
  const [alias, setAliasName] = useState("production");
  const [version, setVersion] = useState(versions.at(-1) ?? 1);
  const set = useSetAlias(name);
  return (
    <form className="row alias-form" onSubmit={(e) => { e.preventDefault(); set.mutate({ alias, version }); }} aria-label="Set alias">
      <span>Alias</span>
      <input aria-label="Alias" value={alias} onChange={(e) => setAliasName(e.target.value)} />
      <span>→</span>
      <select aria-label="Version" value={version} onChange={(e) => setVersion(Number(e.target.value))}>
        {versions.map((v) => <option key={v} value={v}>v{v}</option>)}
      </select>
      <button type="submit" className="button small" disabled={!alias || set.isPending}>Point alias</button>
      <ErrorBanner error={set.error} />
      {flagged[version] && <p className="field-warning small" role="note">v{version} has warnings ({flagged[version].join(", ")}): the alias may point at it, but check the run first.</p>}
    </form>
  );
}

/** An adapter: its versions, aliases, and the selected version's lineage. */
export function AdapterDetail({ name }: { name: string }) {
  const adapter = useAdapter(name);
  const [selected, setSelected] = useState<number>();
  const removeVersion = useDeleteVersion(name);
  const removeAdapter = useDeleteAdapter(name);
  const navigate = useNavigate();
  if (adapter.isError) return <ErrorBanner error={adapter.error} title={name} />;
  if (adapter.isPending) return <p className="muted">Loading {name}…</p>;
  const a = adapter.data;
  const versions = a.versions.map((v) => v.version);
  const current = selected ?? versions.at(-1);
  const flagged: Flagged = Object.fromEntries(a.versions.filter((v) => v.warnings?.length)
    .map((v) => [v.version, v.warnings.map((w) => w.code.replace(/_/g, " "))]));
  return (
    <div className="adapter-detail">
      <div className="page-head">
        <div>
          <h2>{a.name}</h2>
          <p className="muted">on {a.base_model ?? "—"} · created {formatTime(a.created_at)}</p>
        </div>
        <button type="button" className="button danger small" disabled={removeAdapter.isPending}
                onClick={() => { if (confirm(`Remove ${a.name} and all its versions from the registry?`)) removeAdapter.mutate(undefined, { onSuccess: () => navigate("/registry") }); }}>
          Delete adapter
        </button>
      </div>
      <ErrorBanner error={removeAdapter.error ?? removeVersion.error} />
      <table className="table" aria-label="Versions">
        <thead><tr><th>Version</th><th>Status</th><th>Method</th><th>Job</th><th>Aliases</th><th>Created</th><th /></tr></thead>
        <tbody>
          {a.versions.map((v) => (
            <tr key={v.version} className={v.version === current ? "selected clickable" : "clickable"} onClick={() => setSelected(v.version)}>
              <td><button type="button" className="link" onClick={() => setSelected(v.version)}>v{v.version}</button> <code className="small">{v.model}</code></td>
              <td><StatusBadge status={v.status} /> <WarningBadge warnings={v.warnings ?? []} /></td>
              <td>{v.method}</td>
              <td>{v.job_id ? <Link to={`/jobs/${v.job_id}`} onClick={(e) => e.stopPropagation()}>{v.job_id}</Link> : "—"}</td>
              <td>{v.aliases.map((al) => <span key={al} className="tag">@{al}</span>)}</td>
              <td>{formatTime(v.created_at)}</td>
              <td><button type="button" className="link danger" onClick={(e) => { e.stopPropagation(); if (confirm(`Delete ${v.model}?`)) removeVersion.mutate(v.version); }}>delete</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {versions.length > 0 && <AliasForm key={versions.join(",")} name={a.name} versions={versions} flagged={flagged} />}
      {current !== undefined && <VersionDetail name={a.name} version={current} />}
    </div>
  );
}
