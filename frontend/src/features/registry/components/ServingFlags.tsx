import type { AdapterVersion } from "@/api/registry";

type Flags = NonNullable<AdapterVersion["flags"]>;
type Check = { label: string; ok: boolean; detail: string };

/** Each serving check as a sentence with "OK" or "Problem": a bare ✓/✗ read the same for "no full modules"
 *  (fine) and "not servable" (a problem). */
export function servingChecks(flags: Flags): Check[] {
  const checks: Check[] = [];
  const peft = flags.peft_type ? String(flags.peft_type) : null;
  checks.push({ label: "Adapter type", ok: peft === "LORA",
    detail: peft === "LORA" ? "LoRA, which vLLM and LoRAX load as an adapter" : `${peft ?? "not a PEFT adapter"}: vLLM and LoRAX load only LoRA adapters` });
  if (typeof flags.rank === "number") {
    checks.push({ label: "Rank", ok: !flags.rank_above_max,
      detail: flags.rank_above_max ? `${flags.rank}, above the servers' max LoRA rank ${flags.max_lora_rank}` : `${flags.rank} (limit ${flags.max_lora_rank})` });
  }
  checks.push({ label: "Full modules", ok: !flags.modules_to_save,
    detail: flags.modules_to_save ? "carries full modules (modules_to_save), which adapter servers refuse" : "none (only adapter weights)" });
  checks.push({ label: "Vocabulary", ok: !flags.resized_vocabulary,
    detail: flags.resized_vocabulary ? "resized from the base's, which adapter servers refuse" : "same as the base's" });
  return checks;
}

/** What adapter servers (vLLM, LoRAX) will say about this version; the studio itself serves every version. */
export function ServingFlags({ flags }: { flags: Flags }) {
  const servable = flags.adapter_servable === true;
  const reasons = Array.isArray(flags.reasons) ? (flags.reasons as string[]) : [];
  return (
    <div className="serving">
      <p className={servable ? "serving-verdict ok" : "serving-verdict warn"}>
        {servable ? "vLLM and LoRAX can serve this version as an adapter." : `vLLM and LoRAX will not serve it as an adapter${reasons.length ? `: ${reasons.join("; ")}` : ""}. Merge it, or chat with it here (the studio serves every version).`}
      </p>
      <table className="table compact" aria-label="Serving checks">
        <tbody>
          {servingChecks(flags).map((c) => (
            <tr key={c.label}>
              <th scope="row">{c.label}</th>
              <td><span className={`badge badge-${c.ok ? "ok" : "warn"}`}>{c.ok ? "OK" : "Problem"}</span></td>
              <td>{c.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
