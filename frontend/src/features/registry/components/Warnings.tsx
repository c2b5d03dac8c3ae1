import type { AdapterVersion } from "@/api/registry";

type Warning = AdapterVersion["warnings"][number];

/** A compact badge for the versions table: the run flagged something about itself. */
export function WarningBadge({ warnings }: { warnings: Warning[] }) {
  if (!warnings.length) return null;
  const title = warnings.map((w) => w.message).join("\n");
  return <span className="badge badge-warn" title={title}>⚠ {warnings.map((w) => w.code.replace(/_/g, " ")).join(", ")}</span>;
}

/** The run's warnings in full, above a version's details. */
export function WarningList({ warnings }: { warnings: Warning[] }) {
  if (!warnings.length) return null;
  return (
    <div className="banner banner-warn" role="alert">
      <strong>This run flagged {warnings.length === 1 ? "a problem" : "problems"}:</strong>
      <ul>{warnings.map((w, i) => <li key={i}><code>{w.code}</code> {w.message}</li>)}</ul>
      It is still served and may take an alias; check its curves before you promote it.
    </div>
  );
}
