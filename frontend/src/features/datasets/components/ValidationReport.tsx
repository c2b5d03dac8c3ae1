import { ApiError, errorMessage } from "@/api/client";

export interface Issue {
  unit: "line" | "row";
  line: number | null;
  field: string | null;
  problem: string;
}

const ISSUE_START = /(line|row) (\d+)(?:, field '([^']*)')?: /g;

/** Splits the server's "Invalid training file: line 2, field 'x': …; line 3: …" into issues. */
export function parseIssues(message: string): { summary: string; issues: Issue[]; more: string | null } {
  const starts = [...message.matchAll(ISSUE_START)];
  if (starts.length === 0) return { summary: message, issues: [], more: null };
  const summary = message.slice(0, starts[0].index).replace(/[:\s]+$/, "");
  let more: string | null = null;
  const issues = starts.map((match, i) => {
    const from = match.index! + match[0].length;
    const to = i + 1 < starts.length ? starts[i + 1].index! : message.length;
    let problem = message.slice(from, to).replace(/;\s*$/, "").trim();
    if (i === starts.length - 1) {
      const tail = problem.match(/\s*\((and \d+ more problems?)\)\.?$/);
      if (tail) {
        more = tail[1];
        problem = problem.slice(0, tail.index);
      }
      problem = problem.replace(/\.$/, "");
    }
    return { unit: match[1] as Issue["unit"], line: Number(match[2]), field: match[3] ?? null, problem };
  });
  return { summary, issues, more };
}

/** Why a dataset was refused: one row per problem, with its line and field. */
export function ValidationReport({ error, filename }: { error: unknown; filename?: string }) {
  if (!error) return null;
  const message = errorMessage(error);
  const { summary, issues, more } = parseIssues(message);
  const title = error instanceof ApiError && error.code === "invalid_training_file"
    ? `${filename ?? "The file"} was not accepted`
    : `Upload failed${filename ? ` (${filename})` : ""}`;
  return (
    <section className="report" role="alert" aria-label="Validation report">
      <h3>{title}</h3>
      <p>{issues.length ? `${summary}. Fix these and upload again; nothing was stored.` : message}</p>
      {issues.length > 0 && (
        <table className="table compact">
          <thead>
            <tr><th>{issues.some((i) => i.unit === "row") ? "Row" : "Line"}</th><th>Field</th><th>Problem</th></tr>
          </thead>
          <tbody>
            {issues.map((issue, i) => (
              <tr key={i}>
                <td className="num">{issue.line ?? "—"}</td>
                <td><code>{issue.field ?? "(whole line)"}</code></td>
                <td>{issue.problem}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {more && <p className="muted">…{more}.</p>}
    </section>
  );
}
