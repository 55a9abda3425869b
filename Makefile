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

$(B)/%.o: src/%.c $(B)/paths
	@mkdir -p $(@D)
	$(CC) $(MECC_CFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# The objects hold SYSCONFDIR and LOCALSTATEDIR: build again when they change.
$(B)/paths: FORCE
	@mkdir -p $(@D)
	@echo '$(SYSCONFDIR) $(LOCALSTATEDIR)' | cmp -s - $@ || echo '$(SYSCONFDIR) $(LOCALSTATEDIR)' >$@

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
	$(CC) $(MECC_CFLAGS) $(CPPFLAGS) $(CFLAGS) -Isrc -MMD -MP -o $@ $< $(B)/libmeccd.a $(LIBS) -lcmocka

units: $(UNITS)

# render-bench: CPU per email built, and a fingerprint of the bytes (tests/bench/render-bench.c)
$(B)/render-bench: tests/bench/render-bench.c $(B)/libmeccd.a
	$(CC) $(MECC_CFLAGS) $(CPPFLAGS) $(CFLAGS) -Isrc -MMD -MP -o $@ $< $(B)/libmeccd.a $(LIBS)
render-bench: $(B)/render-bench

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

# the system test installs the package too
check-system: deps all deb
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

# Files that name an installed path are kept as NAME.in and written out to $(B)/gen/NAME
# with these variables in place of @NAME@: PREFIX=/usr gives a unit whose ExecStart= is
# /usr/sbin/meccd, man pages and catalog that name the directories really used.
SUBST_VARS := PREFIX BINDIR SBINDIR MANDIR DATADIR SYSCONFDIR LOCALSTATEDIR UNITDIR \
	SYSUSERSDIR TMPFILESDIR CATALOGDIR
SUBST_VALUES := $(foreach v,$(SUBST_VARS),$(v)=$($(v)))
MAN8 := meccd.8 meccctl.8
MAN5 := meccd.conf.5 meccd-database.5
GEN_FILES := etc/meccd.conf systemd/meccd.service systemd/meccd.sysusers systemd/meccd.tmpfiles \
	systemd/meccd.catalog $(MAN8:%=man/%) $(MAN5:%=man/%)
GEN := $(GEN_FILES:%=$(B)/gen/%)

$(B)/gen/%: %.in $(B)/dirs
	@mkdir -p $(@D)
	@echo "  GEN $@"
	@sed $(foreach v,$(SUBST_VARS),-e 's|@$(v)@|$($(v))|g') $< >$@.tmp
	@if grep -n '@[A-Z]*DIR@\|@PREFIX@' $@.tmp; then echo "$<: unknown @...@ above" >&2; exit 1; fi
	@mv -f $@.tmp $@

# Written again whenever one of the directories changes.
$(B)/dirs: FORCE
	@mkdir -p $(@D)
	@echo '$(SUBST_VALUES)' | cmp -s - $@ || echo '$(SUBST_VALUES)' >$@

gen: $(GEN)

TPLDIR = $(DESTDIR)$(SYSCONFDIR)/meccd/templates

# An existing config is never overwritten. Nor is a template: when the installed one
# differs from this version's, the new one goes beside it as NAME.dist, to merge by hand.
install: all $(GEN)
	install -Dm755 meccd $(DESTDIR)$(SBINDIR)/meccd
	install -Dm755 meccctl $(DESTDIR)$(SBINDIR)/meccctl
	install -d $(TPLDIR) $(TPLDIR)/ttt
	[ -e $(DESTDIR)$(SYSCONFDIR)/meccd/meccd.conf ] || \
		install -Dm640 $(B)/gen/etc/meccd.conf $(DESTDIR)$(SYSCONFDIR)/meccd/meccd.conf
	@for f in etc/templates/*.* etc/templates/ttt/*.*; do t=$(TPLDIR)/$${f#etc/templates/}; \
		if [ ! -e $$t ]; then install -m644 $$f $$t || exit 1; \
		elif cmp -s $$f $$t; then rm -f $$t.dist; \
		else cmp -s $$f $$t.dist || install -m644 $$f $$t.dist || exit 1; \
			echo "install: $$t differs from this version's; the new one is $$t.dist"; fi; \
	done
	install -Dm644 $(B)/gen/systemd/meccd.service $(DESTDIR)$(UNITDIR)/meccd.service
	install -Dm644 $(B)/gen/systemd/meccd.sysusers $(DESTDIR)$(SYSUSERSDIR)/meccd.conf
	install -Dm644 $(B)/gen/systemd/meccd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/meccd.conf
	install -Dm644 $(B)/gen/systemd/meccd.catalog $(DESTDIR)$(CATALOGDIR)/meccd.catalog
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m644 $(MAN8:%=$(B)/gen/man/%) $(DESTDIR)$(MANDIR)/man8/
	install -m644 $(MAN5:%=$(B)/gen/man/%) $(DESTDIR)$(MANDIR)/man5/
	install -Dm644 contrib/meccctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/meccctl

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/meccd $(DESTDIR)$(SBINDIR)/meccctl \
	  $(DESTDIR)$(UNITDIR)/meccd.service $(DESTDIR)$(SYSUSERSDIR)/meccd.conf \
	  $(DESTDIR)$(TMPFILESDIR)/meccd.conf $(DESTDIR)$(CATALOGDIR)/meccd.catalog \
	  $(MAN8:%=$(DESTDIR)$(MANDIR)/man8/%) $(MAN5:%=$(DESTDIR)$(MANDIR)/man5/%) \
	  $(DESTDIR)$(BASHCOMPDIR)/meccctl
	@echo "left $(DESTDIR)$(SYSCONFDIR)/meccd, $(DESTDIR)$(LOCALSTATEDIR)/lib/meccd and the user meccd in place"

# A Debian package built with Debian's tools from contrib/debian, in build/deb/:
# meccd_$(VERSION)_<arch>.deb, then checked with lintian (any error fails).
DEB_OUT := build/deb
DEB_SRC := $(DEB_OUT)/meccd-$(VERSION)
deb:
	sh contrib/install-deps.sh deb
	@v=$$(dpkg-parsechangelog -l contrib/debian/changelog -S Version); [ "$$v" = "$(VERSION)" ] || \
		{ echo "contrib/debian/changelog is at $$v, the Makefile at $(VERSION)" >&2; exit 1; }
	rm -rf $(DEB_OUT)
	mkdir -p $(DEB_SRC)
	cp -a Makefile README.md src etc systemd man contrib tests $(DEB_SRC)/
	rm -rf $(DEB_SRC)/contrib/debian
	cp -a contrib/debian $(DEB_SRC)/debian
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u B -u DESTDIR \
		DEB_BUILD_OPTIONS="nocheck $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	lintian --fail-on error --info $(DEB_OUT)/meccd_$(VERSION)_*.changes
	@ls $(DEB_OUT)/*.deb

clean:
	rm -rf build build-asan build-fuzz meccd meccctl

.PHONY: all units render-bench gen deps check check-asan check-system demo bench fuzz install uninstall deb clean FORCE
-include $(wildcard $(B)/*.d $(B)/tests/*.d)
