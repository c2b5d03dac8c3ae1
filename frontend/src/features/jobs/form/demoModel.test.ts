import { describe, expect, it } from "vitest";
import { demoModelNote } from "./demoModel";

describe("demoModelNote", () => {
  it("explains the demo base and stays silent for other models", () => {
    expect(demoModelNote("studio-tiny-llama")).toMatch(/random weights/);
    expect(demoModelNote(" studio-tiny-llama ")).toMatch(/pretrained model/);
    expect(demoModelNote("Qwen/Qwen2.5-0.5B")).toBeUndefined();
    expect(demoModelNote("")).toBeUndefined();
  });
});
