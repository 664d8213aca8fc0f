package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.tls.DenyList.Entry;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DenyListSyncTest {

  private final Entry a = Entry.serial("0a");
  private final Entry b = Entry.serial("0b");
  private final Entry c = Entry.fingerprint("c".repeat(64));
  private final DenyList list = new DenyList();
  private final DenyListSync sync = new DenyListSync(list);

  @Test
  void aReadMakesTheListHoldExactlyWhatTheTableHolds() {
    list.add(a);
    list.add(b);
    List<Set<Entry>> heard = new ArrayList<>();
    list.addListener(heard::add);

    DenyListSync.Applied applied = sync.applyRead(sync.readStarting(), Set.of(b, c));

    assertThat(list.entries()).containsExactlyInAnyOrder(b, c);
    assertThat(applied).isEqualTo(new DenyListSync.Applied(false, 1, 1));
    assertThat(heard).as("each difference is a change the edge hears").hasSize(2);
  }

  @Test
  void aReadThatFindsWhatTheListHoldsChangesNothing() {
    list.add(a);
    List<Set<Entry>> heard = new ArrayList<>();
    list.addListener(heard::add);

    DenyListSync.Applied applied = sync.applyRead(sync.readStarting(), Set.of(a));

    assertThat(applied.changed()).isFalse();
    assertThat(heard).isEmpty();
  }

  @Test
  void aReadBegunBeforeThisNodeAddedAnEntryDoesNotUndenyIt() {
    long token = sync.readStarting();
    sync.added(a);

    assertThat(sync.applyRead(token, Set.of()).stale()).isTrue();
    assertThat(list.entries()).containsExactly(a);

    assertThat(sync.applyRead(sync.readStarting(), Set.of(a)).stale()).as("the next read applies").isFalse();
    assertThat(list.entries()).containsExactly(a);
  }

  @Test
  void aReadBegunBeforeThisNodeRemovedAnEntryDoesNotDenyItAgain() {
    sync.applyRead(sync.readStarting(), Set.of(a, b));
    long token = sync.readStarting();
    sync.removed(a);

    assertThat(sync.applyRead(token, Set.of(a, b)).stale()).isTrue();
    assertThat(list.entries()).containsExactly(b);
  }
}
