import { useQuery } from "@tanstack/react-query";
import { errorMessage } from "@/api/client";
import { modelKeys } from "@/api/keys";
import { getModel, type ModelObject } from "@/api/registry";
import { useDebounced } from "@/lib/useDebounced";

interface Props {
  id: string;
  value: string;
  bases: ModelObject[];
  onChange: (model: string) => void;
  invalid?: boolean;
}

/** What the server says of a typed model: asked once typing pauses, not per keystroke (an online hub
 * lookup costs a request). Listed bases need no asking. */
export function useModelCheck(model: string, listed: boolean) {
  const settled = useDebounced(model.trim(), 400);
  const query = useQuery({
    queryKey: modelKeys.detail(settled),
    queryFn: ({ signal }) => getModel(settled, signal),
    enabled: !!settled && !listed && settled === model.trim(),
    retry: false,
    staleTime: 60_000,
  });
  return { settled: settled === model.trim(), ...query };
}

/**
 * The base model: pick a listed one or type a Hugging Face hub id (`org/name`, `org/name@revision`) or a
 * model folder's name; a typed one is checked with GET /v1/models/{id} (offline, a hub id must already be
 * in the server's Hugging Face cache) and the answer shown right under the field.
 */
export function BaseModelField({ id, value, bases, onChange, invalid }: Props) {
  const listed = bases.some((m) => m.id === value);
  const check = useModelCheck(value, listed);
  let status: { ok: boolean; text: string } | null = null;
  if (value.trim() && !listed) {
    if (!check.settled || check.isFetching) status = { ok: true, text: "Checking…" };
    else if (check.isError) status = { ok: false, text: errorMessage(check.error) };
    else if (check.data) {
      const where = check.data.owned_by === "hub" ? "in the Hugging Face cache" : "a local model folder";
      status = { ok: true, text: `Found: ${where}${check.data.model_type ? ` (${check.data.model_type})` : ""}.` };
    }
  }
  const listId = `${id}-choices`;
  return (
    <>
      <input id={id} type="text" list={listId} value={value} autoComplete="off" spellCheck={false}
             placeholder="studio-tiny-llama, a model folder, or org/name" onChange={(e) => onChange(e.target.value)}
             aria-invalid={invalid || (status ? !status.ok : false)} aria-describedby={status ? `${id}-check` : undefined} />
      <datalist id={listId}>
        {bases.map((m) => <option key={m.id} value={m.id}>{m.model_type ?? m.owned_by}</option>)}
      </datalist>
      {status && (
        <p id={`${id}-check`} className={status.ok ? "help" : "field-error"} role={status.ok ? "status" : "alert"}>
          {status.text}
        </p>
      )}
    </>
  );
}
