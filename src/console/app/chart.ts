/** A small events-per-second bar chart in plain SVG: the last 60 seconds, one bar a second. */
const NS = 'http://www.w3.org/2000/svg';
const SECONDS = 60;

export interface RateChart {
  element: SVGSVGElement;
  /** Counts one event arriving now. */
  add(at?: number): void;
  /** Redraws (call once a second). */
  draw(now?: number): void;
}

export function rateChart(title: string): RateChart {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${SECONDS * 6} 64`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'chart');
  const label = document.createElementNS(NS, 'title');
  svg.appendChild(label);
  const counts = new Map<number, number>();
  const chart: RateChart = {
    element: svg,
    add(at = Date.now()) {
      const s = Math.floor(at / 1000);
      counts.set(s, (counts.get(s) ?? 0) + 1);
    },
    draw(now = Date.now()) {
      const last = Math.floor(now / 1000);
      for (const s of counts.keys()) if (s <= last - SECONDS) counts.delete(s);
      const values = Array.from({ length: SECONDS }, (_, i) => counts.get(last - SECONDS + 1 + i) ?? 0);
      const max = Math.max(1, ...values);
      const total = values.reduce((a, b) => a + b, 0);
      const current = values[SECONDS - 2] ?? 0; // the last whole second
      label.textContent = `${title}: ${current} in the last whole second, ${total} in the last minute, peak ${max}/s`;
      svg.setAttribute('aria-label', label.textContent);
      svg.replaceChildren(label);
      const axis = document.createElementNS(NS, 'line');
      for (const [k, v] of Object.entries({ x1: 0, y1: 60, x2: SECONDS * 6, y2: 60, class: 'axis' })) axis.setAttribute(k, String(v));
      svg.appendChild(axis);
      values.forEach((v, i) => {
        if (!v) return;
        const bar = document.createElementNS(NS, 'rect');
        const height = Math.max(2, (v / max) * 56);
        for (const [k, val] of Object.entries({ x: i * 6 + 1, y: 60 - height, width: 4, height, class: 'bar' })) bar.setAttribute(k, String(val));
        svg.appendChild(bar);
      });
    },
  };
  chart.draw();
  return chart;
}
