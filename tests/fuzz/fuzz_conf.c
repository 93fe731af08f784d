/* The configuration file loader: any bytes in the db file are refused with a
 * message or give a configuration that validates, saves as JSON and loads
 * back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    struct conf c, back;
    char err[256];

    if (!j)
        return 0;
    conf_init(&c);
    if (conf_from_json(&c, j, err, sizeof(err)) == 0) {
        json_t *out = conf_to_json(&c);
        char *a, *b;

        if (conf_validate(&c, err, sizeof(err)) != 0)
            __builtin_trap();
        conf_init(&back);
        if (!out || conf_from_json(&back, out, err, sizeof(err)) != 0)
            __builtin_trap();
        json_t *again = conf_to_json(&back);
        a = json_dumps(out, JSON_SORT_KEYS);
        b = json_dumps(again, JSON_SORT_KEYS);
        if (!a || !b || strcmp(a, b) != 0)
            __builtin_trap();
        free(a);
        free(b);
        json_decref(again);
        json_decref(out);
        conf_free(&back);
    }
    conf_free(&c);
    json_decref(j);
    return 0;
}
