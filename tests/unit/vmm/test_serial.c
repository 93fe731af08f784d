/* serial.c: the 16550A register file, the interrupt line, input and the
 * loopback mode Linux's autoconfig uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "serial.h"

struct fixture {
    struct serial *s;
    int pipe[2];
    bool level;
    int edges;
};

static void set_irq(void *opaque, bool level)
{
    struct fixture *f = opaque;
    f->level = level;
    f->edges++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (pipe(f->pipe) < 0)
        return -1;
    f->s = serial_create(f->pipe[1], set_irq, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    serial_destroy(f->s);
    close(f->pipe[0]);
    close(f->pipe[1]);
    free(f);
    return 0;
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
    uint8_t v = 0xaa;
    serial_io(f->s, reg, &v, 1, false);
    return v;
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
    serial_io(f->s, reg, &v, 1, true);
}

static void test_output(void **state)
{
    struct fixture *f = *state;
    wr(f, 0, 'h');
    wr(f, 0, 'i');
    char buf[4] = "";
    assert_int_equal(read(f->pipe[0], buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "hi", 2);
    assert_int_equal(rd(f, 5) & 0x60, 0x60); /* THRE | TEMT */
    assert_false(f->level);                   /* no IER, no interrupt */
}

static void test_dlab_and_scratch(void **state)
{
    struct fixture *f = *state;
    wr(f, 3, 0x80);       /* DLAB */
    wr(f, 0, 0x01);       /* divisor 115200 */
    wr(f, 1, 0x00);
    assert_int_equal(rd(f, 0), 0x01);
    assert_int_equal(rd(f, 1), 0x00);
    wr(f, 3, 0x03);       /* 8N1 */
    assert_int_equal(rd(f, 3), 0x03);
    assert_int_equal(rd(f, 1), 0);            /* IER, not DLM */
    char c;
    assert_int_equal(write(f->pipe[1], "", 0), 0);
    wr(f, 7, 0x5a);
    assert_int_equal(rd(f, 7), 0x5a);
    (void)c;
}

static void test_thr_empty_interrupt(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 2) & 0x0f, 0x01);  /* none pending */
    wr(f, 1, 0x02);                           /* IER THRI */
    assert_true(f->level);
    assert_int_equal(rd(f, 2) & 0x0f, 0x02);  /* reading IIR clears it */
    assert_false(f->level);
    assert_int_equal(rd(f, 2) & 0x0f, 0x01);
    wr(f, 0, 'x');                            /* THR empties again at once */
    assert_true(f->level);
    wr(f, 1, 0x00);
    assert_false(f->level);
    char buf[2];
    assert_int_equal(read(f->pipe[0], buf, 2), 1);
}

static void test_input(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 5) & 0x01, 0);
    wr(f, 1, 0x01);                           /* IER RDI */
    assert_false(f->level);
    assert_int_equal(serial_input(f->s, (const uint8_t *)"ab", 2), 2);
    assert_true(f->level);
    assert_int_equal(rd(f, 5) & 0x01, 0x01);  /* DR */
    assert_int_equal(rd(f, 2) & 0x0f, 0x04);  /* RDI */
    assert_int_equal(rd(f, 0), 'a');
    assert_true(f->level);
    assert_int_equal(rd(f, 0), 'b');
    assert_false(f->level);
    assert_int_equal(rd(f, 5) & 0x01, 0);
    /* receive buffer full: the rest is not taken */
    uint8_t big[SERIAL_RX_BUF + 10];
    memset(big, 'z', sizeof(big));
    assert_int_equal(serial_input(f->s, big, sizeof(big)), SERIAL_RX_BUF);
    assert_int_equal(serial_rx_room(f->s), 0);
    wr(f, 2, 0x07);                           /* FIFO on, clear RX/TX */
    assert_int_equal(serial_rx_room(f->s), SERIAL_RX_BUF);
    assert_int_equal(rd(f, 2) & 0xc0, 0xc0);  /* 16550A FIFO bits */
}

static void test_loopback_and_msr(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, 6) & 0xf0, 0xb0);  /* DCD DSR CTS */
    wr(f, 4, 0x10 | 0x0a);                    /* LOOP | OUT2 | RTS */
    assert_int_equal(rd(f, 6) & 0xf0, 0x90);  /* DCD(OUT2) | CTS(RTS), as Linux checks */
    wr(f, 0, 'q');                            /* loops back, not out */
    assert_int_equal(rd(f, 5) & 0x01, 0x01);
    assert_int_equal(rd(f, 0), 'q');
    wr(f, 4, 0x1f);
    assert_int_equal(rd(f, 6) & 0xf0, 0xf0);
    wr(f, 4, 0x08);
    uint8_t buf[1];
    assert_int_equal(write(f->pipe[1], "", 0), 0);
    assert_int_equal(serial_input(f->s, (const uint8_t *)"", 0), 0);
    (void)buf;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlab_and_scratch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thr_empty_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_and_msr, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
