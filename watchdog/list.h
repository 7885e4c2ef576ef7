/* list.h - an intrusive doubly-linked list, circular around a head node,
 * as libuv's queue.h and the Linux kernel's list.h are. A struct that can
 * be on a list holds a struct fw_list for it; fw_list_entry gets the
 * struct back. A node that fw_list_init set up, or that fw_list_remove
 * took out, points to itself: it is on no list, and removing it again is
 * harmless.
 */
#ifndef FW_LIST_H
#define FW_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct fw_list {
    struct fw_list *prev;
    struct fw_list *next;
};

/* A static empty list: static struct fw_list l = FW_LIST_INIT(l); */
#define FW_LIST_INIT(l) { &(l), &(l) }

#define fw_list_entry(node, type, field) \
    ((type *)(void *)((char *)(node) - offsetof(type, field)))

/* Walks l from the front; the loop body may remove the current node. */
#define fw_list_each(pos, tmp, l) \
    for ((pos) = (l)->next, (tmp) = (pos)->next; (pos) != (l); \
         (pos) = (tmp), (tmp) = (pos)->next)

/* An empty list, or a node on none. */
static inline void fw_list_init(struct fw_list *l)
{
    l->prev = l->next = l;
}

static inline bool fw_list_empty(const struct fw_list *l)
{
    return l->next == l;
}

/* True when node n is on a list. */
static inline bool fw_list_linked(const struct fw_list *n)
{
    return n->next != n;
}

static inline void fw_list_insert_after(struct fw_list *at, struct fw_list *n)
{
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
}

static inline void fw_list_push_front(struct fw_list *l, struct fw_list *n)
{
    fw_list_insert_after(l, n);
}

static inline void fw_list_push_back(struct fw_list *l, struct fw_list *n)
{
    fw_list_insert_after(l->prev, n);
}

static inline void fw_list_remove(struct fw_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    fw_list_init(n);
}

#endif
