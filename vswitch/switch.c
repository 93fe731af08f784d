/* TEMPORARY: replaced by the datapath implementation (lead is writing it). */
#include <stdio.h>
#include <stdlib.h>
#include "switch.h"

struct vswitch { int dummy; };

struct vswitch *switch_create(struct event_base *base, const struct switch_options *o)
{
    (void)base; (void)o;
    return calloc(1, sizeof(struct vswitch));
}
void switch_destroy(struct vswitch *sw) { free(sw); }
int switch_apply(struct vswitch *sw, const struct conf *next, char *err, size_t errlen)
{
    (void)sw; (void)next; (void)err; (void)errlen;
    return 0;
}
json_t *switch_port_status(struct vswitch *sw, const char *port)
{
    (void)sw; (void)port;
    return json_object();
}
json_t *switch_port_stats(struct vswitch *sw, const char *port, char *err, size_t errlen)
{
    (void)sw; (void)port; (void)err; (void)errlen;
    return json_object();
}
json_t *switch_fdb_show(struct vswitch *sw, const char *bridge, int vlan, char *err,
                        size_t errlen)
{
    (void)sw; (void)bridge; (void)vlan; (void)err; (void)errlen;
    return json_array();
}
int switch_fdb_flush(struct vswitch *sw, const char *bridge, char *err, size_t errlen)
{
    (void)sw; (void)bridge; (void)err; (void)errlen;
    return 0;
}
