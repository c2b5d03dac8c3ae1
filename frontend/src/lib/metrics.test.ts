import { describe, expect, it } from "vitest";
import { mergePoints, metricPoint } from "./metrics";

const metrics = (attempt: number, step: number, data: Record<string, number>) =>
  ({ type: "metrics", attempt, data: { step, ...data } });

describe("curves across attempts", () => {
  it("shows the latest attempt for steps replayed after a resume", () => {
    // attempt 1 reached step 4, its worker died; attempt 2 resumed from the checkpoint at step 2
    const stream = [
      metrics(1, 1, { train_loss: 3 }), metrics(1, 2, { train_loss: 2.5 }), metrics(1, 2, { valid_loss: 2.7 }),
      metrics(1, 3, { train_loss: 2.2 }), metrics(1, 4, { train_loss: 2.1 }),
      metrics(2, 3, { train_loss: 2.0 }), metrics(2, 4, { train_loss: 1.9 }), metrics(2, 5, { train_loss: 1.8 }),
    ];
    const points = mergePoints([], stream.map((e) => metricPoint(e)!));
    expect(points.map((p) => [p.step, p.attempt, p.train_loss])).toEqual([
      [1, 1, 3], [2, 1, 2.5], [3, 2, 2.0], [4, 2, 1.9], [5, 2, 1.8],
    ]);
    expect(points[1].valid_loss).toBe(2.7); // the same attempt's eval at that step is merged in
  });

  it("ignores a straggler from an older attempt", () => {
    const points = mergePoints([metricPoint(metrics(2, 3, { train_loss: 2 }))!], [metricPoint(metrics(1, 3, { train_loss: 9 }))!]);
    expect(points).toEqual([{ step: 3, attempt: 2, train_loss: 2 }]);
  });
});
