/**
 * The links of the documentation: every relative link and image of a Markdown file of the repository
 * points at a file or folder that is in it, and every `#anchor` into a Markdown file names one of
 * its headings (GitHub's slugs). Web links (`https:`, `mailto:`, …) are not followed.
 *
 * The files are git's: tracked, plus untracked ones that are not ignored, so that a link to a run
 * folder (ignored) is broken here as it would be on GitHub, and a new page is checked before its
 * commit. CHANGELOG.md files are generated and skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What the checker may ask of a repository: its files and folders, and the text of its Markdown. */
export interface Repo {
  /** 'file', 'dir', or undefined when `path` (relative to the root, '/'-separated) is not there. */
  kind(path: string): 'file' | 'dir' | undefined;
  /** The text of the Markdown file at `path`. */
  read(path: string): string;
}

/**
 * GitHub's anchor of a heading (github-slugger): lowercase, drop every character that is not a
 * letter, digit, mark, `_`, `-` or space, then spaces to hyphens.
 */
export function githubSlug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** A heading's text as GitHub renders it: links and images by their text, no code marks or HTML tags. */
function plainText(inline: string): string {
  return inline
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '');
}

/** The lines of a Markdown text, with fenced code blocks and a leading front-matter block blanked out. */
function proseLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  let fence: string | null = null;
  let front = lines[0]?.trim() === '---';
  return lines.map((line, i) => {
    if (front) {
      if (i > 0 && line.trim() === '---') front = false;
      return '';
    }
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence !== null) {
      if (m && m[1]![0] === fence[0] && m[1]!.length >= fence.length && line.trim() === m[1]) fence = null;
      return '';
    }
    if (m) {
      fence = m[1]!;
      return '';
    }
    return line;
  });
}

/** The anchors of a Markdown text: its headings' slugs (repeats numbered -1, -2, … as GitHub does) and HTML ids. */
export function anchorsOf(text: string): Set<string> {
  const lines = proseLines(text);
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  const add = (heading: string) => {
    const slug = githubSlug(plainText(heading).trim());
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  };
  lines.forEach((line, i) => {
    const atx = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (atx) add(atx[1] ?? '');
    const prev = lines[i - 1];
    if (/^ {0,3}(=+|-+)[ \t]*$/.test(line) && prev !== undefined && prev.trim() !== '' && !/^ {0,3}(#|[-*+>|] |\d+[.)] )/.test(prev)) {
      add(prev);
    }
    for (const m of line.matchAll(/<a\s[^>]*\b(?:name|id)\s*=\s*["']([^"']+)["']/gi)) anchors.add(m[1]!);
  });
  return anchors;
}

/** A link of a Markdown file: its line (1-based) and destination as written. */
export interface Link {
  line: number;
  target: string;
}

/** The link and image destinations of a Markdown text, outside code: `[t](x)`, `![a](x)`, `[r]: x`, `href="x"`, `src="x"`. */
export function linksOf(text: string): Link[] {
  const links: Link[] = [];
  proseLines(text).forEach((raw, i) => {
    const line = raw.replace(/(`+)[^`]*?\1/g, (s) => ' '.repeat(s.length)); // inline code is not a link
    const patterns = [
      /\]\(\s*(<[^>]*>|[^)\s]*)/g, // [text](dest) and ![alt](dest), nested ones included
      /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/g, // [label]: dest
      /<(?:a|img|source)\s[^>]*\b(?:href|src)\s*=\s*["']([^"']*)["']/gi,
    ];
    for (const p of patterns) {
      for (const m of line.matchAll(p)) links.push({ line: i + 1, target: m[1]!.replace(/^<(.*)>$/, '$1') });
    }
  });
  return links;
}

/** Why `link` of the Markdown file `from` is broken, or undefined if it is not. */
function problem(repo: Repo, from: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return undefined; // https:, mailto:, …
  if (target === '') return 'empty link';
  const hash = target.indexOf('#');
  const pathPart = hash < 0 ? target : target.slice(0, hash);
  const anchor = hash < 0 ? undefined : target.slice(hash + 1);
  let path: string;
  try {
    path = decodeURI(pathPart.replace(/\?.*$/, ''));
  } catch {
    return 'not a valid URI';
  }
  const resolved = path === '' ? from : path.startsWith('/') ? posix.normalize(path.slice(1)) : posix.join(posix.dirname(from), path);
  if (resolved === '..' || resolved.startsWith('../')) return `${resolved} is outside the repository`;
  const kind = repo.kind(resolved.replace(/\/$/, '') || '.');
  if (kind === undefined) return `${resolved} does not exist`;
  if (anchor === undefined || anchor === '' || kind !== 'file' || !/\.md$/i.test(resolved)) return undefined;
  const want = decodeURIComponent(anchor);
  if (anchorsOf(repo.read(resolved)).has(want)) return undefined;
  return `${resolved} has no heading #${want}`;
}

/** The broken links of the Markdown files `files`, as "file:line: target (why)". */
export function brokenLinks(repo: Repo, files: readonly string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    for (const { line, target } of linksOf(repo.read(file))) {
      const why = problem(repo, file, target);
      if (why !== undefined) out.push(`${file}:${line}: ${target} (${why})`);
    }
  }
  return out;
}

/** A repository held in memory: file path → text. Folders are the paths' prefixes. */
function memoryRepo(files: Record<string, string>): Repo {
  return {
    kind: (p) => {
      if (p === '.' || p in files) return p === '.' ? 'dir' : 'file';
      return Object.keys(files).some((f) => f.startsWith(`${p}/`)) ? 'dir' : undefined;
    },
    read: (p) => files[p] ?? '',
  };
}

/** This repository as git sees it: tracked files and untracked ones that are not ignored, present on disk. */
function gitRepo(): { repo: Repo; markdown: string[] } {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(root, f)));
  const files = new Set(listed);
  const dirs = new Set<string>(['.']);
  for (const f of files) for (let d = posix.dirname(f); d !== '.'; d = posix.dirname(d)) dirs.add(d);
  const markdown = [...files].filter((f) => /\.md$/i.test(f) && !f.split('/').includes('node_modules') && posix.basename(f) !== 'CHANGELOG.md').sort();
  return {
    repo: { kind: (p) => (files.has(p) ? 'file' : dirs.has(p) ? 'dir' : undefined), read: (p) => readFileSync(join(root, p), 'utf8') },
    markdown,
  };
}

describe('the link checker', () => {
  it('makes GitHub slugs', () => {
    expect(githubSlug('Two words, here!')).toBe('two-words-here');
    expect(githubSlug('`distill sample`')).toBe('distill-sample');
    expect(githubSlug('FID (LeNet features) vs. σ_max — 1.5×')).toBe('fid-lenet-features-vs-σ_max--15');
    const anchors = anchorsOf('# Top\n\n```sh\n# not a heading\n```\n\n## Top\n\nSetext\n------\n\n## [A link](x.md) and `code`\n<a id="here"></a>\n');
    expect([...anchors].sort()).toEqual(['a-link-and-code', 'here', 'setext', 'top', 'top-1']);
  });

  it('finds the links outside code', () => {
    const text = 'See [a](a.md), ![img](i.png) and [![badge](b.svg)](c/).\n`[not](x.md)`\n```\n[not](y.md)\n```\n[ref]: <d e.md>\n<img src="f.png">\n';
    expect(linksOf(text).map((l) => `${l.line}:${l.target}`)).toEqual(['1:a.md', '1:i.png', '1:b.svg', '1:c/', '6:d e.md', '7:f.png']);
  });

  it('reports missing files, missing headings and links out of the repository, and nothing else', () => {
    const repo = memoryRepo({
      'README.md': [
        '# Project',
        '[guide](docs/guide.md), [section](docs/guide.md#two-words-here), [folder](docs/), [self](#project)',
        '[web](https://example.com/missing.md), [mail](mailto:a@b.c), [code line](src/x.ts#L3)',
        '[gone](docs/old.md), [bad anchor](docs/guide.md#three-words), ![lost](docs/missing.png)',
        '[escape](../outside.md), [self, wrong](#nowhere)',
      ].join('\n'),
      'docs/guide.md': '# Guide\n\n## Two words, here!\n\n[back](../README.md#project)\n',
      'src/x.ts': '',
    });
    expect(brokenLinks(repo, ['README.md', 'docs/guide.md'])).toEqual([
      'README.md:4: docs/old.md (docs/old.md does not exist)',
      'README.md:4: docs/guide.md#three-words (docs/guide.md has no heading #three-words)',
      'README.md:4: docs/missing.png (docs/missing.png does not exist)',
      'README.md:5: ../outside.md (../outside.md is outside the repository)',
      'README.md:5: #nowhere (README.md has no heading #nowhere)',
    ]);
  });
});

describe('the links of the documentation', () => {
  it('point at files, folders and headings that exist', () => {
    const { repo, markdown } = gitRepo();
    expect(markdown.length).toBeGreaterThan(10);
    expect(brokenLinks(repo, markdown)).toEqual([]);
  });
});
