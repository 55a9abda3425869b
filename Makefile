# meccd - Making Every Contact Count back office
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
UNITDIR    ?= /usr/lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
CATALOGDIR ?= /usr/lib/systemd/catalog
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
PKG_CONFIG ?= pkg-config
VERSION    := 0.1.0

PKGS     := libcurl libconfuse sqlite3 libsystemd
CC       ?= cc
CFLAGS   ?= -O2 -g
WERROR   ?= -Werror
MECC_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -Wno-missing-field-initializers \
	-DVERSION=\"$(VERSION)\" -DSYSCONFDIR=\"$(SYSCONFDIR)\" -DLOCALSTATEDIR=\"$(LOCALSTATEDIR)\" \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LIBS     := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

B        ?= build
CTL_SRCS := src/meccctl.c $(wildcard src/ctl-*.c)
SRCS     := $(filter-out src/meccd.c $(CTL_SRCS),$(wildcard src/*.c))
OBJS     := $(SRCS:src/%.c=$(B)/%.o)
CTL_OBJS := $(CTL_SRCS:src/%.c=$(B)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNITS    := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

all: meccd meccctl

$(B)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(MECC_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libmeccd.a: $(OBJS)
	rm -f $@; ar rcs $@ $^

$(B)/meccd: $(B)/meccd.o $(B)/libmeccd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)
$(B)/meccctl: $(CTL_OBJS) $(B)/libmeccd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

meccd meccctl: %: $(B)/%
	cp $< $@.tmp && mv -f $@.tmp $@

$(B)/tests/%: tests/unit/%.c $(B)/libmeccd.a
	@mkdir -p $(@D)
	$(CC) $(MECC_CFLAGS) $(CFLAGS) -Isrc -MMD -MP -o $@ $< $(B)/libmeccd.a $(LIBS) -lcmocka

units: $(UNITS)

deps:
	sh contrib/install-deps.sh build

check: deps
	sh contrib/install-deps.sh test
	$(MAKE) all units
	sh tests/run.sh $(B)

check-asan: deps
	sh contrib/install-deps.sh test
	$(MAKE) B=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" build-asan/meccd build-asan/meccctl units
	ASAN_OPTIONS=detect_leaks=1 SKIP_FUZZ=1 sh tests/run.sh build-asan

check-system: deps all
	sh tests/system/run.sh

demo: deps
	$(MAKE) all
	sh contrib/demo.sh

bench: deps
	sh contrib/install-deps.sh bench
	$(MAKE) all
	sh tests/bench/run.sh

fuzz:
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

install: all
	install -Dm755 meccd $(DESTDIR)$(SBINDIR)/meccd
	install -Dm755 meccctl $(DESTDIR)$(SBINDIR)/meccctl
	install -d $(DESTDIR)$(SYSCONFDIR)/meccd/templates
	[ -e $(DESTDIR)$(SYSCONFDIR)/meccd/meccd.conf ] || install -Dm640 etc/meccd.conf $(DESTDIR)$(SYSCONFDIR)/meccd/meccd.conf
	for f in etc/templates/*; do t=$(DESTDIR)$(SYSCONFDIR)/meccd/templates/$${f##*/}; [ -e $$t ] || install -m644 $$f $$t; done
	install -Dm644 systemd/meccd.service $(DESTDIR)$(UNITDIR)/meccd.service
	install -Dm644 systemd/meccd.sysusers $(DESTDIR)$(SYSUSERSDIR)/meccd.conf
	install -Dm644 systemd/meccd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/meccd.conf
	install -Dm644 systemd/meccd.catalog $(DESTDIR)$(CATALOGDIR)/meccd.catalog
	install -Dm644 man/meccd.8 $(DESTDIR)$(MANDIR)/man8/meccd.8
	install -Dm644 man/meccctl.8 $(DESTDIR)$(MANDIR)/man8/meccctl.8
	install -Dm644 man/meccd.conf.5 $(DESTDIR)$(MANDIR)/man5/meccd.conf.5
	install -Dm644 contrib/meccctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/meccctl

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/meccd $(DESTDIR)$(SBINDIR)/meccctl \
	  $(DESTDIR)$(UNITDIR)/meccd.service $(DESTDIR)$(SYSUSERSDIR)/meccd.conf \
	  $(DESTDIR)$(TMPFILESDIR)/meccd.conf $(DESTDIR)$(CATALOGDIR)/meccd.catalog \
	  $(DESTDIR)$(MANDIR)/man8/meccd.8 $(DESTDIR)$(MANDIR)/man8/meccctl.8 \
	  $(DESTDIR)$(MANDIR)/man5/meccd.conf.5 $(DESTDIR)$(BASHCOMPDIR)/meccctl
	@echo "left $(DESTDIR)$(SYSCONFDIR)/meccd and $(DESTDIR)$(LOCALSTATEDIR)/lib/meccd in place"

clean:
	rm -rf build build-asan build-fuzz meccd meccctl

.PHONY: all units deps check check-asan check-system demo bench fuzz install uninstall clean
-include $(wildcard $(B)/*.d $(B)/tests/*.d)
