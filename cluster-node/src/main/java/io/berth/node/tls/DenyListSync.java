package io.berth.node.tls;

import io.berth.node.tls.DenyList.Entry;
import java.util.HashSet;
import java.util.Set;

/**
 * Brings a node's {@link DenyList} in step with the table every node shares, without undoing a
 * change this node made while a read of the table was under way. A read that began before this
 * node wrote an entry and is applied after it would remove the entry again until the next read
 * (or, for a removal, deny the certificate again): a read is stale once a change of this node was
 * applied after it began, and is dropped; the next read sees the change.
 *
 * <p>Thread-safe: reads complete on the blocking dispatcher while operators' changes complete on
 * others. The list's listeners run inside this object's lock, which they must not block in anyway
 * ({@link DenyList#addListener}).
 */
final class DenyListSync {

  /** What a read of the table did to the list. */
  record Applied(boolean stale, int added, int removed) {

    static final Applied STALE = new Applied(true, 0, 0);

    boolean changed() {
      return added + removed > 0;
    }
  }

  private final DenyList list;
  /** Changes this node applied, counted: a read compares the count at its start and at its end. */
  private long localChanges;

  DenyListSync(DenyList list) {
    this.list = list;
  }

  /** Called before reading the table; the answer goes to {@link #applyRead} with what was read. */
  synchronized long readStarting() {
    return localChanges;
  }

  /**
   * Makes the list hold exactly {@code stored}, what a read begun at {@code token} found; nothing
   * when a change of this node was applied since.
   */
  synchronized Applied applyRead(long token, Set<Entry> stored) {
    if (token != localChanges) {
      return Applied.STALE;
    }
    int removed = 0;
    for (Entry entry : new HashSet<>(list.entries())) {
      if (!stored.contains(entry) && list.remove(entry)) {
        removed++;
      }
    }
    int added = 0;
    for (Entry entry : stored) {
      if (list.add(entry)) {
        added++;
      }
    }
    return new Applied(false, added, removed);
  }

  /** Denies a certificate this node just wrote to the table. */
  synchronized void added(Entry entry) {
    localChanges++;
    list.add(entry);
  }

  /** Stops denying a certificate this node just deleted from the table. */
  synchronized void removed(Entry entry) {
    localChanges++;
    list.remove(entry);
  }
}
