/* Control requests as they come off the socket: JSON-RPC framing, then the
 * configuration edits they ask for (the KEY=VALUE words of vswitchctl),
 * applied to a configuration that must stay valid whatever is accepted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *apply(void *arg, const char *method, json_t *params, int *code, char *err,
                     size_t errlen)
{
    struct conf *c = arg;
    const char *opts[16];
    size_t nopts = 0;
    json_t *o = json_object_get(params, "options");
    const char *br = json_string_value(json_object_get(params, "bridge"));
    const char *port = json_string_value(json_object_get(params, "port"));
    const char *key;
    json_t *v;
    char buf[16][128];
    int r = -1;

    json_object_foreach(o, key, v)
    {
        if (nopts == 16)
            break;
        if (json_is_string(v))
            snprintf(buf[nopts], sizeof(buf[nopts]), "%s=%s", key, json_string_value(v));
        else if (json_is_integer(v))
            snprintf(buf[nopts], sizeof(buf[nopts]), "%s=%lld", key,
                     (long long)json_integer_value(v));
        else
            continue;
        opts[nopts] = buf[nopts];
        nopts++;
    }
    if (!strcmp(method, "add-br") && br)
        r = conf_add_bridge(c, br, err, errlen);
    else if (!strcmp(method, "del-br") && br)
        r = conf_del_bridge(c, br, err, errlen);
    else if (!strcmp(method, "set-br") && br)
        r = conf_set_bridge(c, br, opts, nopts, err, errlen);
    else if (!strcmp(method, "add-port") && br && port)
        r = conf_add_port(c, br, port, opts, nopts, err, errlen);
    else if (!strcmp(method, "set-port") && port)
        r = conf_set_port(c, port, opts, nopts, err, errlen);
    else if (!strcmp(method, "del-port") && port)
        r = conf_del_port(c, br, port, err, errlen);
    else
        snprintf(err, errlen, "no such method");
    if (r != 0) {
        *code = -32602;
        return NULL;
    }
    return json_object();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf c;
    char verr[256];
    size_t start = 0;

    conf_init(&c);
    /* one request per line, as on the socket */
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        json_t *resp = rpc_handle_line((const char *)data + start, i - start, apply, &c);
        if (resp) {
            size_t len;
            char *line = rpc_dump_line(resp, &len);
            free(line);
            json_decref(resp);
        }
        /* whatever was accepted leaves a configuration that validates */
        if (conf_validate(&c, verr, sizeof(verr)) != 0)
            __builtin_trap();
        start = i + 1;
    }
    conf_free(&c);
    return 0;
}
