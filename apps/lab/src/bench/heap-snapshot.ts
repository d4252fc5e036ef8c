/**
 * A V8 heap snapshot (`.heapsnapshot`) reduced to what connection-memory compares: per
 * class (constructor name, or the kind of a non-object), how many objects, their own size
 * and what they retain (dominator tree, weak edges ignored, as DevTools computes it), and
 * who holds the instances of a few chosen classes.
 *
 * `node apps/lab/dist/bench/heap-snapshot.js <before.heapsnapshot> <after.heapsnapshot> <connections added> [--retainers A,B]`
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface ClassStats {
  count: number;
  selfSize: number;
  /** Retained size of the instances not dominated by another instance of the same class (no double counting). */
  retainedSize: number;
}

export interface HeapSummary {
  totalSize: number;
  nodeCount: number;
  classes: Map<string, ClassStats>;
  /** For each class asked for: `edge name <- holder class` → how many of its instances are held that way. */
  retainers: Map<string, Map<string, number>>;
}

interface RawSnapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Reads and reduces one snapshot (the raw JSON is dropped before this returns). */
export function summarise(path: string, retainersOf: readonly string[] = []): HeapSummary {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as RawSnapshot;
  const { meta } = raw.snapshot;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const typeAt = meta.node_fields.indexOf('type');
  const nameAt = meta.node_fields.indexOf('name');
  const sizeAt = meta.node_fields.indexOf('self_size');
  const edgeCountAt = meta.node_fields.indexOf('edge_count');
  const edgeTypeAt = meta.edge_fields.indexOf('type');
  const edgeNameAt = meta.edge_fields.indexOf('name_or_index');
  const edgeToAt = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const weak = edgeTypes.indexOf('weak');
  const { nodes, edges, strings } = raw;
  const n = nodes.length / nodeFields;

  // Class of every node, as an index into `names`.
  const names: string[] = [];
  const nameIndex = new Map<string, number>();
  const classOf = new Int32Array(n);
  const selfSize = new Float64Array(n);
  const firstEdge = new Int32Array(n + 1);
  let totalSize = 0;
  for (let i = 0, edge = 0; i < n; i++) {
    const base = i * nodeFields;
    const label = classLabel(nodeTypes[nodes[base + typeAt]], strings[nodes[base + nameAt]]);
    let index = nameIndex.get(label);
    if (index === undefined) {
      index = names.push(label) - 1;
      nameIndex.set(label, index);
    }
    classOf[i] = index;
    selfSize[i] = nodes[base + sizeAt];
    totalSize += selfSize[i];
    firstEdge[i] = edge;
    edge += nodes[base + edgeCountAt];
    firstEdge[i + 1] = edge;
  }
  const targetOf = (e: number): number => edges[e * edgeFields + edgeToAt] / nodeFields;
  const isWeak = (e: number): boolean => edges[e * edgeFields + edgeTypeAt] === weak;

  const idom = dominators(n, firstEdge, targetOf, isWeak);
  const tree = dominatorTree(n, idom);
  const retained = retainedSizes(tree, idom, selfSize);
  const classes = new Map<string, ClassStats>();
  for (let i = 0; i < n; i++) {
    const label = names[classOf[i]];
    const stats = classes.get(label) ?? { count: 0, selfSize: 0, retainedSize: 0 };
    stats.count++;
    stats.selfSize += selfSize[i];
    classes.set(label, stats);
  }
  // Retained per class without double counting: walk the dominator tree, adding an
  // instance only when no ancestor in the tree is of its class.
  for (const [node, label] of outermostInstances(tree, classOf)) {
    classes.get(names[label])!.retainedSize += retained[node];
  }

  const retainers = new Map<string, Map<string, number>>();
  const wanted = new Set(retainersOf.map((label) => nameIndex.get(label)).filter((index) => index !== undefined));
  for (const label of retainersOf) retainers.set(label, new Map());
  if (wanted.size > 0) {
    for (let from = 0; from < n; from++) {
      for (let e = firstEdge[from]; e < firstEdge[from + 1]; e++) {
        const to = targetOf(e);
        if (!wanted.has(classOf[to]) || isWeak(e)) continue;
        const edgeType = edgeTypes[edges[e * edgeFields + edgeTypeAt]];
        const nameOrIndex = edges[e * edgeFields + edgeNameAt];
        const edgeName = edgeType === 'element' || edgeType === 'hidden' ? `[${edgeType}]` : strings[nameOrIndex];
        const key = `${edgeName} <- ${names[classOf[from]]}`;
        const counts = retainers.get(names[classOf[to]])!;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  return { totalSize, nodeCount: n, classes, retainers };
}

/** DevTools-like grouping: objects by constructor, closures by function name, the rest by kind. */
function classLabel(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
    case 'synthetic':
      return name;
    case 'closure':
      return `(closure) ${name || '(anonymous)'}`;
    case 'hidden':
    case 'array':
      return `(${type}) ${name}`;
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return `(${type})`;
    default:
      return `(${type})`;
  }
}

/**
 * Immediate dominators from the root (node 0), Lengauer-Tarjan with path compression,
 * iterative (the graph is millions of nodes deep in places). Unreachable nodes get -1.
 */
function dominators(n: number, firstEdge: Int32Array, targetOf: (e: number) => number, isWeak: (e: number) => boolean): Int32Array {
  // Depth-first numbering; vertex[k] = node numbered k.
  const number = new Int32Array(n).fill(-1);
  const vertex = new Int32Array(n);
  const parent = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  const cursor = new Int32Array(n);
  let count = 0;
  let top = 0;
  stack[top++] = 0;
  number[0] = count;
  vertex[count++] = 0;
  cursor[0] = firstEdge[0];
  while (top > 0) {
    const v = stack[top - 1];
    if (cursor[v] >= firstEdge[v + 1]) {
      top--;
      continue;
    }
    const e = cursor[v]++;
    if (isWeak(e)) continue;
    const w = targetOf(e);
    if (number[w] !== -1) continue;
    number[w] = count;
    vertex[count++] = w;
    parent[w] = v;
    cursor[w] = firstEdge[w];
    stack[top++] = w;
  }
  // Predecessors of reachable nodes (reverse of the strong edges), in CSR form.
  const predCount = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (number[v] === -1) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e++) if (!isWeak(e)) predCount[targetOf(e) + 1]++;
  }
  for (let i = 0; i < n; i++) predCount[i + 1] += predCount[i];
  const preds = new Int32Array(predCount[n]);
  const fill = predCount.slice(0, n);
  for (let v = 0; v < n; v++) {
    if (number[v] === -1) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e++) if (!isWeak(e)) preds[fill[targetOf(e)]++] = v;
  }
  // All of the following in depth-first numbers.
  const semi = new Int32Array(count);
  const label = new Int32Array(count);
  const ancestor = new Int32Array(count).fill(-1);
  const dom = new Int32Array(count);
  const bucketHead = new Int32Array(count).fill(-1);
  const bucketNext = new Int32Array(count).fill(-1);
  for (let k = 0; k < count; k++) {
    semi[k] = k;
    label[k] = k;
  }
  const path: number[] = [];
  const evaluate = (v: number): number => {
    if (ancestor[v] === -1) return v;
    let x = v;
    while (ancestor[ancestor[x]] !== -1) {
      path.push(x);
      x = ancestor[x];
    }
    while (path.length > 0) {
      const y = path.pop()!;
      const a = ancestor[y];
      if (semi[label[a]] < semi[label[y]]) label[y] = label[a];
      ancestor[y] = ancestor[a];
    }
    return label[v];
  };
  for (let w = count - 1; w > 0; w--) {
    const node = vertex[w];
    for (let p = predCount[node]; p < predCount[node + 1]; p++) {
      const v = number[preds[p]];
      if (v === -1) continue;
      const u = evaluate(v);
      if (semi[u] < semi[w]) semi[w] = semi[u];
    }
    const s = semi[w];
    bucketNext[w] = bucketHead[s];
    bucketHead[s] = w;
    const pw = number[parent[node]];
    ancestor[w] = pw;
    for (let v = bucketHead[pw]; v !== -1; v = bucketNext[v]) {
      const u = evaluate(v);
      dom[v] = semi[u] < semi[v] ? u : pw;
    }
    bucketHead[pw] = -1;
  }
  for (let w = 1; w < count; w++) if (dom[w] !== semi[w]) dom[w] = dom[dom[w]];
  const idom = new Int32Array(n).fill(-1);
  for (let w = 1; w < count; w++) idom[vertex[w]] = vertex[dom[w]];
  return idom;
}

/** The dominator tree as child lists (CSR: children of v are `children[first[v]..first[v + 1])`). */
interface DominatorTree {
  first: Int32Array;
  children: Int32Array;
}

function dominatorTree(n: number, idom: Int32Array): DominatorTree {
  const first = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) if (idom[v] !== -1) first[idom[v] + 1]++;
  for (let i = 0; i < n; i++) first[i + 1] += first[i];
  const children = new Int32Array(first[n]);
  const fill = first.slice(0, n);
  for (let v = 0; v < n; v++) if (idom[v] !== -1) children[fill[idom[v]]++] = v;
  return { first, children };
}

/** Each node's size plus everything it dominates. */
function retainedSizes(tree: DominatorTree, idom: Int32Array, selfSize: Float64Array): Float64Array {
  const order: number[] = [];
  const stack = [0];
  while (stack.length > 0) {
    const v = stack.pop()!;
    order.push(v);
    for (let c = tree.first[v]; c < tree.first[v + 1]; c++) stack.push(tree.children[c]);
  }
  // Children come after their parents in `order`: summing backwards adds each subtree once.
  const retained = Float64Array.from(selfSize);
  for (let k = order.length - 1; k > 0; k--) retained[idom[order[k]]] += retained[order[k]];
  return retained;
}

/** Nodes (with their class) that have no ancestor of the same class in the dominator tree. */
function outermostInstances(tree: DominatorTree, classOf: Int32Array): [number, number][] {
  const open = new Map<number, number>();
  const result: [number, number][] = [];
  // Depth first with an exit marker (~v) that closes v's class again.
  const stack = [0];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    if (entry < 0) {
      const label = classOf[~entry];
      open.set(label, open.get(label)! - 1);
      continue;
    }
    const label = classOf[entry];
    const depth = open.get(label) ?? 0;
    if (depth === 0) result.push([entry, label]);
    open.set(label, depth + 1);
    stack.push(~entry);
    for (let c = tree.first[entry]; c < tree.first[entry + 1]; c++) stack.push(tree.children[c]);
  }
  return result;
}

export interface ClassDelta {
  label: string;
  count: number;
  selfSize: number;
  retainedSize: number;
}

/** Per class, what `after` holds beyond `before`; sorted by own size, largest first. */
export function diff(before: HeapSummary, after: HeapSummary): ClassDelta[] {
  const labels = new Set([...before.classes.keys(), ...after.classes.keys()]);
  const zero: ClassStats = { count: 0, selfSize: 0, retainedSize: 0 };
  return [...labels]
    .map((label) => {
      const a = before.classes.get(label) ?? zero;
      const b = after.classes.get(label) ?? zero;
      return { label, count: b.count - a.count, selfSize: b.selfSize - a.selfSize, retainedSize: b.retainedSize - a.retainedSize };
    })
    .sort((x, y) => y.selfSize - x.selfSize);
}

/** The difference as a table per connection (or membership) added: objects, own bytes and retained bytes each. */
export function formatDiff(deltas: ClassDelta[], connections: number, unit: 'connection' | 'membership' = 'connection', top = 40): string {
  const totalSelf = deltas.reduce((sum, delta) => sum + delta.selfSize, 0);
  const rows = deltas
    // Classes whose objects only moved (the root's retained size, say) are not a cost.
    .filter((delta) => delta.count !== 0 || delta.selfSize !== 0)
    .slice(0, top)
    .map((delta) => [
      delta.label.length > 60 ? `${delta.label.slice(0, 57)}...` : delta.label,
      (delta.count / connections).toFixed(2),
      (delta.selfSize / connections).toFixed(0),
      (delta.retainedSize / connections).toFixed(0),
    ]);
  const per = unit === 'connection' ? 'conn' : 'memb';
  const header = ['class', `objects/${per}`, `self B/${per}`, `retained B/${per}`];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    `all classes: ${(totalSelf / connections).toFixed(0)} B of JS heap per ${unit} (self sizes; ${connections} ${unit}s apart)`,
  ].join('\n');
}

/** Who holds the instances of each class asked for, in `summary` (most common holders first). */
export function formatRetainers(summary: HeapSummary, top = 8): string {
  const out: string[] = [];
  for (const [label, counts] of summary.retainers) {
    const instances = summary.classes.get(label)?.count ?? 0;
    out.push(`${label} (${instances} instances) held by:`);
    for (const [key, count] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${String(count).padStart(7)}  ${key}`);
  }
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [beforePath, afterPath, connections, flag, list] = process.argv.slice(2);
  if (!beforePath || !afterPath || !(Number(connections) > 0)) {
    console.error('usage: heap-snapshot.js <before.heapsnapshot> <after.heapsnapshot> <connections added> [--retainers A,B]');
    process.exit(2);
  }
  const retainersOf = flag === '--retainers' && list ? list.split(',') : [];
  const before = summarise(beforePath);
  const after = summarise(afterPath, retainersOf);
  console.log(formatDiff(diff(before, after), Number(connections)));
  if (retainersOf.length > 0) console.log(`\n${formatRetainers(after)}`);
}
