/**
 * The playground page: picks the tfjs backend, then mounts the two tabs, "Sample" (sample.ts) and
 * "Distil live" (distil.ts). Errors are shown in one banner above the tabs, each naming the file or
 * backend that failed and what to do.
 *
 * URL parameters: `backend` (webgl, wasm or cpu: tried first), `tab` (sample or distil), and the
 * files, relative to the page: `generator`, `teacher`, `onnx` (Sample tab) and `toy-teacher` (Distil live).
 */
import './style.css';

import { BACKENDS, isBackend, startBackend, type BackendChoice } from './backend.js';
import { PageError } from './fetch.js';
import { mountSample } from './sample.js';

interface DistilModule {
  mountDistil(root: HTMLElement, opts: { teacherUrl: string; backend: string }): void;
}
// The Distil live tab is written separately (distil.ts); until it exists the tab says so.
const distilModule = import.meta.glob<DistilModule>('./distil.ts')['./distil.ts'];

const params = new URLSearchParams(location.search);
const files = {
  generator: params.get('generator') ?? 'weights/mnist/generator.safetensors',
  teacher: params.get('teacher') ?? 'weights/mnist/teacher.safetensors',
  onnx: params.get('onnx') ?? 'model.onnx',
  toyTeacher: params.get('toy-teacher') ?? 'weights/toy/ring8-teacher.safetensors',
};

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const banner = byId<HTMLElement>('banner');

/** Shows `error` in the banner (once per distinct message). */
function report(error: unknown, level: 'error' | 'warning' = 'error'): void {
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof PageError ? error.hint : level === 'error' ? 'Reload the page; if it happens again, the browser console has the details.' : '';
  if ([...banner.children].some((p) => (p as HTMLElement).dataset.message === message)) return;
  const p = document.createElement('p');
  p.className = level;
  p.dataset.message = message;
  p.append(Object.assign(document.createElement('strong'), { textContent: level === 'error' ? 'Error: ' : 'Note: ' }), message);
  if (hint) p.append(' ', Object.assign(document.createElement('span'), { className: 'hint', textContent: hint }));
  banner.append(p);
  banner.hidden = false;
  if (level === 'error') console.warn(error);
}
window.addEventListener('error', (e) => report(e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => report(e.reason));

function showBackend(choice: BackendChoice): void {
  const line = byId<HTMLElement>('backend');
  line.dataset.backend = choice.name;
  line.textContent = `tfjs backend: ${choice.name}`;
  const asked = choice.failed.find((f) => f.name === choice.requested);
  if (asked !== undefined) {
    const what = isBackend(asked.name) ? `The ${asked.name} backend (?backend=${asked.name}) did not start: ${asked.reason}.` : `?backend=${asked.name} is not a tfjs backend of this page.`;
    report(
      new PageError(
        `${what} The page runs on ${choice.name} instead.`,
        `Open the page without ?backend= to let it choose, or ask for another: ?backend=${BACKENDS.join(', ?backend=')}.`,
      ),
      'warning',
    );
  }
  const others = choice.failed.filter((f) => f !== asked);
  if (others.length > 0) line.title = others.map((f) => `${f.name} did not start: ${f.reason}`).join('\n');
  if (others.length > 0) line.textContent += ` (${others.map((f) => `${f.name} did not start`).join(', ')})`;
}

/** The tabs: buttons with role=tab, each controlling the panel named by its aria-controls. */
function setUpTabs(onShow: (tab: string) => void): void {
  const tabs = [...document.querySelectorAll<HTMLButtonElement>('[role=tab]')];
  const show = (tab: HTMLButtonElement) => {
    for (const t of tabs) {
      t.setAttribute('aria-selected', String(t === tab));
      byId(t.getAttribute('aria-controls')!).hidden = t !== tab;
    }
    const name = tab.dataset.tab!;
    const url = new URL(location.href);
    url.searchParams.set('tab', name);
    history.replaceState(null, '', url);
    onShow(name);
  };
  for (const t of tabs) t.addEventListener('click', () => show(t));
  show(tabs.find((t) => t.dataset.tab === params.get('tab')) ?? tabs[0]!);
}

async function main(): Promise<void> {
  const choice = await startBackend(params.get('backend'), new URL('tfjs-wasm/', document.baseURI).href);
  showBackend(choice);
  mountSample(byId('panel-sample'), { generatorUrl: files.generator, teacherUrl: files.teacher, onnxUrl: files.onnx, backend: choice.name, report });
  let distilMounted = false;
  setUpTabs((tab) => {
    if (tab !== 'distil' || distilMounted) return;
    distilMounted = true;
    const root = byId('panel-distil');
    if (distilModule === undefined) {
      root.append(Object.assign(document.createElement('p'), { className: 'placeholder', textContent: 'The live distillation is not part of this build yet.' }));
      return;
    }
    distilModule()
      .then((m) => m.mountDistil(root, { teacherUrl: files.toyTeacher, backend: choice.name }))
      .catch((e: unknown) => report(e));
  });
  document.body.dataset.ready = 'true';
}

main().catch((e: unknown) => report(e));
