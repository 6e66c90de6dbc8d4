/*
 * graph.c - `pythreadctl graph [PATTERN]`: who waits for whom, as Graphviz
 * DOT (or JSON with --json).
 *
 * Nodes are the owners of holds and waits (a thread of a session's
 * process; a process's threads drawn together) and the objects. An object
 * points at each holder ("holds"), an owner at what it waits for. A
 * deadlock is a cycle through Lock and RLock holds and the waits to
 * acquire them (a Condition's re-acquire included): the strongly connected
 * components of that graph with more than one node, drawn in red. The
 * parties do not say whether a wait has a timeout, so a cycle a timeout
 * will break is red too; `pythreadctl deadlocks` (the daemon's own finding)
 * lists only those no timeout can end. Waits on
 * a Semaphore, an Event, a Condition's notify or a Barrier are drawn but
 * close no cycle: nobody in particular is waited for.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct owner {
    uint64_t session, thread;
    const pt_inspect_party *who; /* its details, from one of its parties */
} owner;

typedef struct edge {
    size_t from, to; /* vertices: objects first, then owners */
    const pt_inspect_party *p;
    const char *what; /* "holds" or the party's wait */
    int can_cycle;
    int in_cycle;
} edge;

typedef struct graph {
    const pt_snap *snap;
    owner *owners;
    size_t nowners;
    edge *edges;
    size_t nedges, capedges;
    size_t *comp;  /* strongly connected component per vertex */
    size_t *csize; /* vertices per component */
} graph;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL) {
        pt_cli_fail(PT_EXIT_FAILED, "graph: out of memory");
        exit(PT_EXIT_FAILED);
    }
    return p;
}

/* ---- building ---------------------------------------------------------- */

static int owner_cmp(const void *a, const void *b)
{
    const owner *x = a, *y = b;

    if (x->session != y->session)
        return x->session < y->session ? -1 : 1;
    return (x->thread > y->thread) - (x->thread < y->thread);
}

static int lock_kind(int kind)
{
    return kind == PT_KIND_LOCK || kind == PT_KIND_RLOCK || kind == PT_KIND_CONDITION;
}

/* A Condition over a named lock the graph has: its holds and lock waits
 * are drawn on the lock, the Condition keeps its notify waits. */
static size_t cond_lock_at(const pt_snap *s, const pt_inspect_object *o)
{
    if (o->kind != PT_KIND_CONDITION || o->cond_lock[0] == '\0')
        return SIZE_MAX;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].d != NULL && strcmp(s->v[i].o.name, o->cond_lock) == 0)
            return i;
    }
    return SIZE_MAX;
}

static int on_lock(const pt_inspect_party *p, int holder)
{
    return holder || strcmp(p->what, "acquire") == 0 || strcmp(p->what, "reacquire") == 0;
}

/* Calls fn for every party drawn on object i. */
typedef void (*party_fn)(graph *g, size_t i, const pt_inspect_party *p, int holder);

static void each_party(graph *g, party_fn fn)
{
    for (size_t i = 0; i < g->snap->n; i++) {
        const pt_inspect_detail *d = g->snap->v[i].d;
        int moved = cond_lock_at(g->snap, &g->snap->v[i].o) != SIZE_MAX;

        for (size_t k = 0; d != NULL && k < d->n_holders; k++) {
            if (!moved)
                fn(g, i, &d->holders[k], 1);
        }
        for (size_t k = 0; d != NULL && k < d->n_waiters; k++) {
            if (!moved || !on_lock(&d->waiters[k], 0))
                fn(g, i, &d->waiters[k], 0);
        }
    }
}

static void owner_add(graph *g, size_t i, const pt_inspect_party *p, int holder)
{
    (void)i, (void)holder;
    g->owners[g->nowners++] = (owner){p->session, p->thread, p};
}

static size_t owner_vertex(const graph *g, const pt_inspect_party *p)
{
    owner key = {p->session, p->thread, NULL};
    const owner *at = bsearch(&key, g->owners, g->nowners, sizeof(key), owner_cmp);

    return g->snap->n + (size_t)(at - g->owners);
}

static void edge_add(graph *g, size_t from, size_t to, const pt_inspect_party *p, const char *what,
                     int can_cycle)
{
    if (g->nedges == g->capedges) {
        g->capedges = g->capedges ? 2 * g->capedges : 64;
        g->edges = realloc(g->edges, g->capedges * sizeof(*g->edges));
        if (g->edges == NULL) {
            pt_cli_fail(PT_EXIT_FAILED, "graph: out of memory");
            exit(PT_EXIT_FAILED);
        }
    }
    g->edges[g->nedges++] = (edge){from, to, p, what, can_cycle, 0};
}

static void party_edge(graph *g, size_t i, const pt_inspect_party *p, int holder)
{
    int can = lock_kind(g->snap->v[i].o.kind) && on_lock(p, holder);
    size_t who = owner_vertex(g, p);

    if (holder)
        edge_add(g, i, who, p, "holds", can);
    else
        edge_add(g, who, i, p, p->what, can);
}

static size_t parties_count(const pt_snap *s)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].d != NULL)
            n += s->v[i].d->n_holders + s->v[i].d->n_waiters;
    }
    return n;
}

static void owners_build(graph *g)
{
    size_t n = 0;

    g->owners = xcalloc(parties_count(g->snap), sizeof(*g->owners));
    each_party(g, owner_add);
    qsort(g->owners, g->nowners, sizeof(*g->owners), owner_cmp);
    for (size_t i = 0; i < g->nowners; i++) {
        if (n == 0 || owner_cmp(&g->owners[n - 1], &g->owners[i]) != 0)
            g->owners[n++] = g->owners[i];
    }
    g->nowners = n;
}

static void edges_build(graph *g)
{
    each_party(g, party_edge);
    for (size_t i = 0; i < g->snap->n; i++) {
        size_t lock = cond_lock_at(g->snap, &g->snap->v[i].o);

        if (g->snap->v[i].d != NULL && lock != SIZE_MAX)
            edge_add(g, i, lock, NULL, "uses", 0);
    }
}

/* ---- cycles: Tarjan's strongly connected components, without recursion -- */

typedef struct tarjan {
    size_t nv;
    size_t *first, *next_edge; /* out-edges per vertex, as lists */
    size_t *index, *low, *stack, *frame, *at;
    char *on_stack;
    size_t sp, fp, counter, ncomp;
} tarjan;

#define NONE SIZE_MAX

static void tarjan_init(tarjan *t, const graph *g)
{
    t->nv = g->snap->n + g->nowners;
    t->first = xcalloc(t->nv, sizeof(size_t));
    t->next_edge = xcalloc(g->nedges, sizeof(size_t));
    t->index = xcalloc(t->nv, sizeof(size_t));
    t->low = xcalloc(t->nv, sizeof(size_t));
    t->stack = xcalloc(t->nv, sizeof(size_t));
    t->frame = xcalloc(t->nv, sizeof(size_t));
    t->at = xcalloc(t->nv, sizeof(size_t));
    t->on_stack = xcalloc(t->nv, 1);
    for (size_t v = 0; v < t->nv; v++)
        t->first[v] = t->index[v] = NONE;
    for (size_t e = 0; e < g->nedges; e++) {
        t->next_edge[e] = NONE;
        if (g->edges[e].can_cycle) {
            t->next_edge[e] = t->first[g->edges[e].from];
            t->first[g->edges[e].from] = e;
        }
    }
}

static void tarjan_free(tarjan *t)
{
    free(t->first);
    free(t->next_edge);
    free(t->index);
    free(t->low);
    free(t->stack);
    free(t->frame);
    free(t->at);
    free(t->on_stack);
}

static void visit_start(tarjan *t, size_t v)
{
    t->index[v] = t->low[v] = t->counter++;
    t->stack[t->sp++] = v;
    t->on_stack[v] = 1;
    t->frame[t->fp++] = v;
    t->at[v] = t->first[v];
}

/* v's component is done: pop it off the stack. */
static void component_pop(tarjan *t, graph *g, size_t v)
{
    size_t w, n = 0;

    do {
        w = t->stack[--t->sp];
        t->on_stack[w] = 0;
        g->comp[w] = t->ncomp;
        n++;
    } while (w != v);
    g->csize[t->ncomp++] = n;
}

static void visit_from(tarjan *t, graph *g, size_t root)
{
    visit_start(t, root);
    while (t->fp > 0) {
        size_t v = t->frame[t->fp - 1], e = t->at[v];

        if (e != NONE) {
            size_t w = g->edges[e].to;

            t->at[v] = t->next_edge[e];
            if (t->index[w] == NONE)
                visit_start(t, w);
            else if (t->on_stack[w] && t->index[w] < t->low[v])
                t->low[v] = t->index[w];
            continue;
        }
        t->fp--;
        if (t->low[v] == t->index[v])
            component_pop(t, g, v);
        if (t->fp > 0 && t->low[v] < t->low[t->frame[t->fp - 1]])
            t->low[t->frame[t->fp - 1]] = t->low[v];
    }
}

static void cycles_find(graph *g)
{
    tarjan t = {0};

    tarjan_init(&t, g);
    g->comp = xcalloc(t.nv, sizeof(size_t));
    g->csize = xcalloc(t.nv, sizeof(size_t));
    for (size_t v = 0; v < t.nv; v++) {
        if (t.index[v] == NONE)
            visit_from(&t, g, v);
    }
    for (size_t e = 0; e < g->nedges; e++) {
        const edge *x = &g->edges[e];

        g->edges[e].in_cycle =
            x->can_cycle && g->comp[x->from] == g->comp[x->to] && g->csize[g->comp[x->from]] > 1;
    }
    tarjan_free(&t);
}

static void graph_build(graph *g, const pt_snap *s)
{
    memset(g, 0, sizeof(*g));
    g->snap = s;
    owners_build(g);
    edges_build(g);
    cycles_find(g);
}

static void graph_free(graph *g)
{
    free(g->owners);
    free(g->edges);
    free(g->comp);
    free(g->csize);
}

static int vertex_in_cycle(const graph *g, size_t v)
{
    return g->csize[g->comp[v]] > 1;
}

/* ---- DOT ------------------------------------------------------------- */

/* A DOT string: the text as pythreadctl shows any daemon text (escaped),
 * then quoted for DOT, so a name can neither end the string nor draw. */
static void dot_text(FILE *f, const char *s)
{
    char *e = pt_cli_escape(s);

    for (const char *p = e; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        fputc(*p, f);
    }
    free(e);
}

static void dot_str(FILE *f, const char *s)
{
    fputc('"', f);
    dot_text(f, s);
    fputc('"', f);
}

static void owner_id(char *buf, size_t len, const owner *o)
{
    snprintf(buf, len, "s%llu_t%llu", (unsigned long long)o->session,
             (unsigned long long)o->thread);
}

static void vertex_id(const graph *g, size_t v, char *buf, size_t len)
{
    if (v < g->snap->n)
        snprintf(buf, len, "o%zu", v);
    else
        owner_id(buf, len, &g->owners[v - g->snap->n]);
}

static void dot_process(FILE *f, const graph *g, size_t first, size_t end)
{
    const pt_inspect_party *p = g->owners[first].who;
    char label[PT_INSPECT_TEXT_MAX + 96], id[64];

    snprintf(label, sizeof(label), "pid %ld %s (session %llu)", p->pid, p->process,
             (unsigned long long)p->session);
    fprintf(f, "  subgraph \"cluster_s%llu\" {\n    label=", (unsigned long long)p->session);
    dot_str(f, label);
    fprintf(f, ";\n    style=rounded;\n");
    for (size_t i = first; i < end; i++) {
        owner_id(id, sizeof(id), &g->owners[i]);
        snprintf(label, sizeof(label), "thread %llu", (unsigned long long)g->owners[i].thread);
        fprintf(f, "    \"%s\" [shape=box, label=", id);
        dot_str(f, label);
        fprintf(f, "%s];\n", vertex_in_cycle(g, g->snap->n + i) ? ", color=red" : "");
    }
    fprintf(f, "  }\n");
}

static void dot_objects(FILE *f, const graph *g)
{
    for (size_t i = 0; i < g->snap->n; i++) {
        const pt_inspect_object *o = &g->snap->v[i].o;

        if (g->snap->v[i].d == NULL)
            continue;
        fprintf(f, "  \"o%zu\" [shape=ellipse, label=\"", i);
        dot_text(f, pt_cli_kind_word(o->kind));
        fputs("\\n", f); /* DOT's line break */
        dot_text(f, o->name);
        fprintf(f, "\"%s];\n", vertex_in_cycle(g, i) ? ", color=red" : "");
    }
}

static void dot_edges(FILE *f, const graph *g)
{
    char from[64], to[64], label[48];

    for (size_t e = 0; e < g->nedges; e++) {
        const edge *x = &g->edges[e];

        vertex_id(g, x->from, from, sizeof(from));
        vertex_id(g, x->to, to, sizeof(to));
        if (x->p != NULL && x->p->count > 1)
            snprintf(label, sizeof(label), "%s %llu", x->what, (unsigned long long)x->p->count);
        else
            snprintf(label, sizeof(label), "%s", x->what);
        fprintf(f, "  \"%s\" -> \"%s\" [label=\"%s\"%s%s];\n", from, to, label,
                strcmp(x->what, "holds") == 0 ? "" : ", style=dashed",
                x->in_cycle ? ", color=red, fontcolor=red, penwidth=2" : "");
    }
}

static void dot_print(FILE *f, const graph *g)
{
    size_t first = 0;

    fprintf(f, "digraph pythread {\n  rankdir=LR;\n  node [fontname=\"sans-serif\", "
               "fontsize=10];\n  edge [fontname=\"sans-serif\", fontsize=9];\n");
    for (size_t i = 1; i <= g->nowners; i++) {
        if (i == g->nowners || g->owners[i].session != g->owners[first].session) {
            dot_process(f, g, first, i);
            first = i;
        }
    }
    dot_objects(f, g);
    dot_edges(f, g);
    fprintf(f, "}\n");
}

/* ---- JSON ------------------------------------------------------------ */

static void json_nodes(pt_json *j, const graph *g)
{
    char id[64];

    pt_json_arr(j, "nodes");
    for (size_t i = 0; i < g->snap->n; i++) {
        if (g->snap->v[i].d == NULL)
            continue;
        pt_json_obj(j, NULL);
        vertex_id(g, i, id, sizeof(id));
        pt_json_str(j, "id", id);
        pt_json_str(j, "type", "object");
        pt_json_str(j, "name", g->snap->v[i].o.name);
        pt_json_str(j, "kind", pt_cli_kind_word(g->snap->v[i].o.kind));
        pt_json_bool(j, "in_cycle", vertex_in_cycle(g, i));
        pt_json_end(j);
    }
    for (size_t i = 0; i < g->nowners; i++) {
        const pt_inspect_party *p = g->owners[i].who;

        pt_json_obj(j, NULL);
        vertex_id(g, g->snap->n + i, id, sizeof(id));
        pt_json_str(j, "id", id);
        pt_json_str(j, "type", "owner");
        pt_json_uint(j, "session", p->session);
        pt_json_int(j, "pid", p->pid);
        pt_json_uint(j, "uid", p->uid);
        pt_json_uint(j, "thread", p->thread);
        pt_json_str(j, "process", p->process);
        pt_json_bool(j, "in_cycle", vertex_in_cycle(g, g->snap->n + i));
        pt_json_end(j);
    }
    pt_json_end(j);
}

static void json_edges(pt_json *j, const graph *g)
{
    char id[64];

    pt_json_arr(j, "edges");
    for (size_t e = 0; e < g->nedges; e++) {
        const edge *x = &g->edges[e];

        pt_json_obj(j, NULL);
        vertex_id(g, x->from, id, sizeof(id));
        pt_json_str(j, "from", id);
        vertex_id(g, x->to, id, sizeof(id));
        pt_json_str(j, "to", id);
        pt_json_str(j, "type", x->what);
        if (x->p != NULL) {
            pt_json_uint(j, "count", x->p->count);
            pt_json_num(j, "seconds", x->p->seconds < 0 ? NAN : x->p->seconds);
        }
        pt_json_bool(j, "in_cycle", x->in_cycle);
        pt_json_end(j);
    }
    pt_json_end(j);
}

/* Each cycle: the ids of its vertices. */
static void json_cycles(pt_json *j, const graph *g)
{
    size_t nv = g->snap->n + g->nowners;
    char id[64];

    pt_json_arr(j, "cycles");
    for (size_t c = 0; c < nv; c++) {
        if (g->csize[c] < 2)
            continue;
        pt_json_arr(j, NULL);
        for (size_t v = 0; v < nv; v++) {
            if (g->comp[v] == c) {
                vertex_id(g, v, id, sizeof(id));
                pt_json_str(j, NULL, id);
            }
        }
        pt_json_end(j);
    }
    pt_json_end(j);
}

static int json_print(const graph *g)
{
    pt_json *j = pt_json_new(stdout);

    pt_json_obj(j, NULL);
    json_nodes(j, g);
    json_edges(j, g);
    json_cycles(j, g);
    pt_json_end(j);
    return pt_json_finish(j) < 0 ? PT_EXIT_FAILED : PT_EXIT_OK;
}

/* ---- the command ------------------------------------------------------- */

int pt_cmd_graph(pt_cli *cli, int argc, char **argv)
{
    const pt_cli_command *cmd = pt_cli_find("graph");
    pt_client *c;
    pt_snap s;
    graph g;
    int opt, code = PT_EXIT_OK, rc;

    while ((opt = pt_cli_getopt(cli, cmd, argc, argv, "", NULL)) != -1) {
        if (opt == 'h')
            return PT_EXIT_OK;
        return PT_EXIT_USAGE;
    }
    if (argc - optind > 1)
        return pt_cli_usage("graph", "at most one PATTERN");
    if ((c = pt_cli_client(cli, &code)) == NULL)
        return code;
    rc = pt_snap_take(c, optind < argc ? argv[optind] : NULL, SIZE_MAX, &s);
    if (rc != 0)
        return pt_cli_lib_fail("graph", rc);
    graph_build(&g, &s);
    if (cli->json)
        code = json_print(&g);
    else
        dot_print(stdout, &g);
    graph_free(&g);
    pt_snap_free(&s);
    return code;
}
