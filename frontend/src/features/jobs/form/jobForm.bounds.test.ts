// The form refuses what the server would (issue 9): every size-like field has the server's upper limit.
import { describe, expect, it } from "vitest";
import { buildJob, initialValues, tuningDefaults } from "./jobForm";

const valid = () => ({ ...initialValues("studio-tiny-llama"), training_file: "file-x" });

describe("size limits", () => {
  it("names the limit of max_steps", () => {
    const v = valid();
    const { body, errors } = buildJob({ ...v, training: { ...v.training, max_steps: "5000000" } });
    expect(body).toBeNull();
    expect(errors["training.max_steps"]).toBe("must be at most 1000000");
  });

  it.each([
    ["prefix_tuning", "encoder_hidden_size", "1000000000000", "must be at most 16384"],
    ["p_tuning", "encoder_hidden_size", "20000", "must be at most 16384"],
    ["adapter", "bottleneck_size", "65536", "must be at most 16384"],
    ["freeze", "trainable_layers", "100000", "must be at most 1024"],
    ["lora", "alpha", "1e300", "must be at most 65536"],
  ] as const)("names the limit of %s %s", (type, field, value, message) => {
    const defaults = tuningDefaults(type);
    const v = { ...valid(), tuningType: type, ...defaults, tuning: { ...defaults.tuning, [field]: value } };
    const { body, errors } = buildJob(v);
    expect(body).toBeNull();
    expect(errors[`tuning.${field}`]).toBe(message);
  });
});
