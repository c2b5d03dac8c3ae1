import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { getApiKey, onAuthRequired, setApiKey } from "@/api/auth";

/** Asks for an API key whenever the studio answers 401 (team mode), stores it, and reloads every query. */
export function KeyPrompt() {
  const client = useQueryClient();
  const [reason, setReason] = useState<"missing" | "refused" | null>(null);
  const [draft, setDraft] = useState("");

  useEffect(() => onAuthRequired((hadKey) => setReason(hadKey ? "refused" : "missing")), []);

  if (reason === null) return null;
  const save = (event: FormEvent) => {
    event.preventDefault();
    const key = draft.trim();
    if (!key) return;
    setApiKey(key);
    setDraft("");
    setReason(null);
    void client.invalidateQueries();
  };
  return (
    <div className="key-prompt-backdrop">
      <form className="key-prompt" role="dialog" aria-modal="true" aria-labelledby="key-prompt-title" onSubmit={save}>
        <h2 id="key-prompt-title">API key required</h2>
        <p>
          {reason === "refused"
            ? "The studio refused the stored key (unknown or revoked). Enter another one."
            : "This studio runs in team mode: enter the API key an admin made for you with `studio keys create`."}
        </p>
        <label className="field">
          <span>API key</span>
          <input type="password" autoComplete="off" autoFocus placeholder="sk-studio-…" value={draft}
                 onChange={(e) => setDraft(e.target.value)} />
        </label>
        <p className="muted">It is kept in this browser only (localStorage).</p>
        <div className="key-prompt-actions">
          {getApiKey() && (
            <button type="button" className="button" onClick={() => { setApiKey(null); setReason("missing"); }}>
              Forget the stored key
            </button>
          )}
          <button type="submit" className="button primary" disabled={!draft.trim()}>Use this key</button>
        </div>
      </form>
    </div>
  );
}
