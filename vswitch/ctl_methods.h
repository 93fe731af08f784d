/* The control methods: one per vswitchctl verb, each taking a JSON object of
 * params (docs/protocol.md). Mutating methods edit a copy of the conf, apply it
 * to the switch, save it to the db file, and only then keep it: when any step
 * fails nothing changes and the error goes back. */
#ifndef VSWITCH_CTL_METHODS_H
#define VSWITCH_CTL_METHODS_H

#include <stddef.h>

#include <jansson.h>

#include "conf.h"
#include "switch.h"

struct ctl_methods;

/* Takes over *conf (the configuration already applied to sw). db_path NULL:
 * changes are not saved. */
struct ctl_methods *ctl_methods_create(struct vswitch *sw, struct conf *conf,
                                       const char *db_path);
void ctl_methods_destroy(struct ctl_methods *m);

const struct conf *ctl_methods_conf(const struct ctl_methods *m);

/* An rpc_method_fn (arg is the struct ctl_methods): the result as a new
 * reference, or NULL with an rpc_code in *code and a sentence in err. */
json_t *ctl_methods_call(void *m, const char *method, json_t *params, int *code,
                         char *err, size_t errlen);

/* The method names, NULL-terminated. */
extern const char *const ctl_method_names[];

#endif
