import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { alignSeries, mergePoints, metricPoint, type MetricPoint } from "@/lib/metrics";
import { LineChart } from "./LineChart";

const SERIES = [
  { label: "train", color: "#2563eb" },
  { label: "valid", color: "#f97316" },
];

function metricsEvent(step: number, data: Record<string, number>) {
  return { type: "metrics", data: { step, ...data } };
}

describe("LineChart fed by streamed metrics", () => {
  it("grows as points stream in, without re-creating the plot", () => {
    let points: MetricPoint[] = [];
    const stream = [
      metricsEvent(1, { train_loss: 3.2 }),
      metricsEvent(2, { train_loss: 2.9 }),
      metricsEvent(2, { valid_loss: 3.0 }), // an eval at the same step merges into it
      metricsEvent(3, { train_loss: 2.5 }),
    ];
    const data = () => alignSeries(points, ["train_loss", "valid_loss"]);
    const { container, rerender } = render(<LineChart title="loss" series={SERIES} data={data()} />);
    const figure = screen.getByTestId("chart-loss");
    expect(figure).toHaveAttribute("data-points", "0");
    expect(screen.getByText(/waiting for the first points/i)).toBeInTheDocument();
    const canvas = container.querySelector("canvas");
    expect(canvas).not.toBeNull();

    for (const event of stream) {
      points = mergePoints(points, [metricPoint(event)!]);
      rerender(<LineChart title="loss" series={SERIES} data={data()} />);
    }

    expect(figure).toHaveAttribute("data-points", "3");
    expect(container.querySelector("canvas")).toBe(canvas); // same uPlot instance, fed with setData
    expect(screen.queryByText(/waiting for the first points/i)).toBeNull();
    expect(screen.getByText("train").querySelector("b")).toHaveTextContent("2.5"); // latest value
    expect(screen.getByText("valid").querySelector("b")).toHaveTextContent("3");
  });

  it("keeps gaps for a series that is logged less often", () => {
    const points = mergePoints([], [
      { step: 1, train_loss: 2 }, { step: 2, train_loss: 1.8, valid_loss: 1.9 }, { step: 3, train_loss: 1.7 },
    ]);
    expect(alignSeries(points, ["train_loss", "valid_loss"])).toEqual([[1, 2, 3], [2, 1.8, 1.7], [null, 1.9, null]]);
  });

  it("sorts a late point into place and lets a repeated step override", () => {
    const points = mergePoints([{ step: 1, train_loss: 2 }, { step: 3, train_loss: 1 }], [
      { step: 2, train_loss: 1.5 }, { step: 3, train_loss: 0.9 },
    ]);
    expect(points.map((p) => [p.step, p.train_loss])).toEqual([[1, 2], [2, 1.5], [3, 0.9]]);
  });

  it("ignores events that carry no metrics", () => {
    expect(metricPoint({ type: "message", data: { step: 1 } })).toBeNull();
    expect(metricPoint({ type: "metrics", data: null })).toBeNull();
  });
});
