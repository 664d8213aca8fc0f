package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.berth.node.tls.DenyList.Entry;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class DenyListTest {

  private final LocalCa ca = LocalCa.create("Berth test CA");
  private final X509Certificate a = ca.issueDevice("a").certificate();
  private final X509Certificate b = ca.issueDevice("b").certificate();

  @Test
  void deniesADeviceByItsIdWhateverItsCertificates() {
    DenyList list = new DenyList();
    list.add(Entry.device("meter-7"));

    assertThat(list.matchDevice("meter-7")).contains(Entry.device("meter-7"));
    assertThat(list.matchDevice("Meter-7")).as("ids are case-sensitive, as HELLO has them").isEmpty();
    assertThat(list.denies(ca.issueDevice("meter-7").certificate())).as("certificates are named otherwise").isFalse();
    assertThatThrownBy(() -> Entry.device("not a device id!")).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("a device id is 1 to 64 characters");
    assertThatThrownBy(() -> Entry.of(DenyList.Kind.DEVICE, a)).isInstanceOf(IllegalArgumentException.class);

    list.remove(Entry.device("meter-7"));
    assertThat(list.matchDevice("meter-7")).isEmpty();
  }

  @Test
  void deniesACertificateByItsSerialOrItsFingerprint() {
    DenyList list = new DenyList();
    assertThat(list.denies(a)).isFalse();

    list.add(Entry.serial(CertificateIdentity.serial(a)));
    list.add(Entry.fingerprint(CertificateIdentity.fingerprint(b)));

    assertThat(list.denies(a)).isTrue();
    assertThat(list.match(a)).contains(Entry.of(DenyList.Kind.SERIAL, a));
    assertThat(list.match(b)).contains(Entry.of(DenyList.Kind.FINGERPRINT, b));
    assertThat(list.denies(ca.issueDevice("a").certificate())).as("a new certificate of the same device").isFalse();

    list.remove(Entry.serial(CertificateIdentity.serial(a)));
    assertThat(list.denies(a)).isFalse();
    assertThat(list.entries()).containsExactly(Entry.of(DenyList.Kind.FINGERPRINT, b));
  }

  @Test
  void entriesAreCanonicalWhateverTheirSpelling() {
    assertThat(Entry.serial("00:0A:FF")).isEqualTo(Entry.serial("aff")).isEqualTo(new Entry(DenyList.Kind.SERIAL, "0aff"));
    String fingerprint = CertificateIdentity.fingerprint(a);
    String opensslStyle = String.join(":", fingerprint.toUpperCase().split("(?<=\\G..)"));
    assertThat(Entry.fingerprint(opensslStyle).value()).isEqualTo(fingerprint);

    assertThatThrownBy(() -> Entry.serial("xyz")).hasMessageContaining("hex digits");
    assertThatThrownBy(() -> Entry.serial("1".repeat(41))).hasMessageContaining("at most 40 hex digits");
    assertThatThrownBy(() -> Entry.fingerprint("abcd")).hasMessageContaining("64 hex digits, got 4");
  }

  @Test
  void kindsAreNamedInLowerCaseAndAnUnknownNameIsRefused() {
    assertThat(DenyList.Kind.ofLabel("serial")).isEqualTo(DenyList.Kind.SERIAL);
    assertThat(DenyList.Kind.FINGERPRINT.label()).isEqualTo("fingerprint");
    assertThatThrownBy(() -> DenyList.Kind.ofLabel("SERIAL"))
        .hasMessage("a deny list entry is a serial, a fingerprint or a device, got 'SERIAL'");
  }

  @Test
  void listenersHearEachChangeAndNothingElse() {
    DenyList list = new DenyList();
    List<Set<Entry>> heard = new ArrayList<>();
    Runnable stopListening = list.addListener(heard::add);
    Entry entry = Entry.of(DenyList.Kind.SERIAL, a);

    assertThat(list.add(entry)).isTrue();
    assertThat(list.add(entry)).isFalse();
    assertThat(list.remove(Entry.of(DenyList.Kind.SERIAL, b))).isFalse();
    assertThat(list.remove(entry)).isTrue();
    assertThat(heard).containsExactly(Set.of(entry), Set.of());

    stopListening.run();
    list.add(entry);
    assertThat(heard).hasSize(2);
  }

  @Test
  void concurrentChangesAreAllKeptAndHeard() throws Exception {
    DenyList list = new DenyList();
    List<Set<Entry>> heard = new CopyOnWriteArrayList<>();
    list.addListener(heard::add);
    int threads = 4;
    int perThread = 250;
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int base = t * perThread;
        done.add(pool.submit(() -> {
          start.await();
          for (int i = 1; i <= perThread; i++) {
            list.add(Entry.serial(Integer.toHexString(base + i)));
          }
          return null;
        }));
      }
      start.countDown();
      for (Future<?> f : done) {
        f.get(10, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(list.entries()).hasSize(threads * perThread);
    assertThat(heard).hasSize(threads * perThread);
  }
}
