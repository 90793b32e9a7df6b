// A uPlot chart of one or more series over time, sized to its container and redrawn on resize.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { html } from "./html.js";
import { locale } from "./i18n.js";

const COLOURS = ["#1d6fb8", "#c2410c", "#15803d", "#7c3aed", "#b45309"];

/**
 * `series`: [{label, points: [[iso, value|null], ...]}] sharing one time axis when `bars`;
 * otherwise each series keeps its own instants (vitals are taken at different times).
 */
export function Chart({ title, series, bars = false, unit = "", testid }) {
  const box = useRef(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return undefined;
    const times = [...new Set(series.flatMap((s) => s.points.map(([at]) => at)))].sort();
    const index = new Map(times.map((at, i) => [at, i]));
    const columns = series.map((s) => {
      const column = new Array(times.length).fill(null);
      for (const [at, value] of s.points) column[index.get(at)] = value;
      return column;
    });
    const data = [times.map((at) => Date.parse(at) / 1000), ...columns];
    const options = {
      width: Math.max(240, element.clientWidth),
      height: 180,
      title,
      scales: { x: { time: true } },
      axes: [{}, { label: unit, size: 56 }],
      legend: { live: true },
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: COLOURS[i % COLOURS.length],
          fill: bars ? `${COLOURS[i % COLOURS.length]}55` : undefined,
          width: bars ? 1 : 2,
          spanGaps: !bars,
          points: { show: !bars },
          paths: bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
        })),
      ],
    };
    const plot = new uPlot(options, data, element);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(240, element.clientWidth), height: 180 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [JSON.stringify(series), title, locale()]);
  return html`<figure class="chart" data-testid=${testid}><div ref=${box}></div></figure>`;
}
