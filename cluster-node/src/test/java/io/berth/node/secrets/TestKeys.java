package io.berth.node.secrets;

/**
 * Keys the tests seal mapping secrets with. {@link #KEYS} is also set for every test JVM
 * (berth.secrets.keys in cluster-node/pom.xml), so that test actor systems built on the default
 * configuration hold it. Every test node holds both keys: a test that rotates (starts a node with
 * {@link #ROTATED}) leaves rows sealed with "newer" that the nodes of later tests still open.
 */
public final class TestKeys {

  public static final String TEST = "test=c/CpS7y6ic2fwlygnugLWs7WqJMF1xh4G+sd7qLrO58=";
  public static final String NEWER = "newer=OProJVxASZkcA8_tqHaIpcRKg2HtQPB775n7dl8f_l4";
  /** "test" seals, "newer" opens too. */
  public static final String KEYS = TEST + "," + NEWER;
  /** After a rotation: "newer" seals, "test" still opens. */
  public static final String ROTATED = NEWER + "," + TEST;

  private TestKeys() {}

  public static SecretSealer sealer() {
    return new SecretSealer(SecretSettings.of(KEYS, false));
  }
}
