package io.berth.persistence;

import org.apache.pekko.actor.AbstractExtensionId;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.Extension;

/**
 * Where the journal reports each batch it wrote to the database (how many events, how long the
 * insert took, whether it failed), so that the node can export them as metrics without this
 * module knowing of metrics. One report per batch, none per event; until an observer is set
 * they go nowhere.
 */
public final class JournalWrites implements Extension {

  /** Told of each batch, on the thread that completed its insert: must not block. */
  @FunctionalInterface
  public interface Observer {
    void written(int events, long nanos, boolean failed);
  }

  private static final Observer NONE = (events, nanos, failed) -> { };

  private static final AbstractExtensionId<JournalWrites> ID = new AbstractExtensionId<>() {
    @Override
    public JournalWrites createExtension(ExtendedActorSystem system) {
      return new JournalWrites();
    }
  };

  private volatile Observer observer = NONE;

  private JournalWrites() {}

  public static JournalWrites get(ActorSystem system) {
    return ID.get(system);
  }

  /** From now on, each batch is reported to {@code observer}. */
  public void observe(Observer observer) {
    this.observer = observer;
  }

  void written(int events, long nanos, boolean failed) {
    observer.written(events, nanos, failed);
  }
}
