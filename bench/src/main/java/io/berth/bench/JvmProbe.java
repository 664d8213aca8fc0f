package io.berth.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What another JVM of ours holds and uses, read from outside it: the collector's view through
 * {@code jcmd} (a full GC, then the heap in use and committed) and the kernel's through {@code
 * /proc} (resident memory, CPU time, open files and their limit). Linux only, like the scenarios
 * that use it.
 */
final class JvmProbe {

  /**
   * After a full GC: the process's resident set, the Java heap in use (what is live) and the part
   * of the heap that is resident, in bytes. RSS less the resident heap is what lives outside the
   * heap: metaspace, code, thread stacks, direct buffers, the allocator's own.
   */
  record Sample(long rssBytes, long heapUsedBytes, long heapResidentBytes) {
    Sample minus(Sample baseline) {
      return new Sample(rssBytes - baseline.rssBytes, heapUsedBytes - baseline.heapUsedBytes,
          heapResidentBytes - baseline.heapResidentBytes);
    }

    long outsideHeapBytes() {
      return rssBytes - heapResidentBytes;
    }
  }

  /**
   * "def new generation total 9792K, used 2105K [0x..80000000, 0x..80aa0000, 0x..aaaa0000)", or
   * "garbage-first heap total 262144K, used 12345K [0x..80000000, 0x..100000000)": the heap in use,
   * and the address range the heap is reserved in.
   */
  private static final Pattern HEAP_LINE = Pattern.compile(
      "(generation|heap)\\s+total \\d+K, used (\\d+)K \\[0x([0-9a-f]+),.*0x([0-9a-f]+)\\)");
  /** A mapping's header in /proc/PID/smaps: "80000000-80aa0000 rw-p 00000000 00:00 0". */
  private static final Pattern MAPPING = Pattern.compile("^([0-9a-f]+)-([0-9a-f]+) ");
  private static final Pattern LIMIT_LINE = Pattern.compile("^Max open files\\s+(\\d+|unlimited)\\s+(\\d+|unlimited)");
  /** Linux reports CPU times in /proc in units of USER_HZ, 100 per second on every common platform. */
  private static final double TICKS_PER_SECOND = 100;

  private JvmProbe() {}

  /**
   * Runs a full GC in {@code pid} (twice, so that what the first one only made unreachable through
   * cleaners is gone too) and samples heap and RSS right after it. For those two GCs the heap's
   * free ratios are lowered (they are manageable flags), so that the collector gives back what is
   * not live and RSS follows the live heap; they are restored afterwards, so that the JVM grows
   * its heap as usual under load instead of collecting all the time.
   */
  static Sample afterGc(long pid) {
    long min = flag(pid, "MinHeapFreeRatio");
    long max = flag(pid, "MaxHeapFreeRatio");
    jcmd(pid, "VM.set_flag", "MinHeapFreeRatio", "0");
    jcmd(pid, "VM.set_flag", "MaxHeapFreeRatio", "10");
    try {
      jcmd(pid, "GC.run");
      jcmd(pid, "GC.run");
      long usedKb = 0;
      long low = Long.MAX_VALUE;
      long high = 0;
      for (String line : jcmd(pid, "GC.heap_info")) {
        Matcher m = HEAP_LINE.matcher(line);
        if (m.find()) {
          usedKb += Long.parseLong(m.group(2));
          low = Math.min(low, Long.parseUnsignedLong(m.group(3), 16));
          high = Math.max(high, Long.parseUnsignedLong(m.group(4), 16));
        }
      }
      if (high == 0) {
        throw new IllegalStateException("jcmd " + pid + " GC.heap_info: no heap figures in its output");
      }
      return new Sample(rssKb(pid) * 1024, usedKb * 1024, residentKb(pid, low, high) * 1024);
    } finally {
      jcmd(pid, "VM.set_flag", "MaxHeapFreeRatio", Long.toString(max));
      jcmd(pid, "VM.set_flag", "MinHeapFreeRatio", Long.toString(min));
    }
  }

  /**
   * {@link #afterGc} until the live heap stops falling: sampled every {@code interval}, up to
   * {@code samples} times, until a sample is no more than {@code tolerance} bytes below the one
   * before; returns the last. After thousands of connections closed, a server still holds their
   * channels, session actors and cancelled timers for a while (4,000 closed device connections:
   * 5 MB more at the first sample than 20 s later), which one sample would count as the baseline.
   */
  static Sample afterGcSettled(long pid, Duration interval, int samples, long tolerance) {
    Sample last = afterGc(pid);
    for (int i = 1; i < samples; i++) {
      LocalCluster.pause(interval.toMillis());
      Sample next = afterGc(pid);
      boolean settled = next.heapUsedBytes() >= last.heapUsedBytes() - tolerance;
      last = next;
      if (settled) {
        break;
      }
    }
    return last;
  }

  /** A numeric VM flag's current value ("uintx MaxHeapFreeRatio = 70 {manageable} {default}"). */
  private static long flag(long pid, String name) {
    Pattern line = Pattern.compile("\\s" + name + "\\s+=\\s+(\\d+)");
    for (String l : jcmd(pid, "VM.flags", "-all")) {
      Matcher m = line.matcher(l);
      if (m.find()) {
        return Long.parseLong(m.group(1));
      }
    }
    throw new IllegalStateException("jcmd " + pid + " VM.flags: no " + name);
  }

  /** VmRSS of the process, in KiB. */
  static long rssKb(long pid) {
    for (String line : readLines(Path.of("/proc", Long.toString(pid), "status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    throw new IllegalStateException("no VmRSS in /proc/" + pid + "/status");
  }

  /** KiB resident in the mappings that start in [low, high): the heap, when that is its range. */
  private static long residentKb(long pid, long low, long high) {
    long kb = 0;
    boolean inRange = false;
    for (String line : readLines(Path.of("/proc", Long.toString(pid), "smaps"))) {
      Matcher m = MAPPING.matcher(line);
      if (m.find()) {
        long start = Long.parseUnsignedLong(m.group(1), 16);
        inRange = start >= low && start < high;
      } else if (inRange && line.startsWith("Rss:")) {
        kb += Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return kb;
  }

  /** CPU time the process has used so far, user and system, in seconds. */
  static double cpuSeconds(long pid) {
    return cpuSecondsOf(readLines(Path.of("/proc", Long.toString(pid), "stat")).get(0));
  }

  /** The name in a /proc stat line: "1234 (name) S ...". */
  private static String nameOf(String stat) {
    return stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  }

  /** User and system CPU seconds of a /proc stat line, a process's or a thread's. */
  private static double cpuSecondsOf(String stat) {
    // After "pid (name) ": state, ppid, ..., utime and stime are the 12th and 13th fields.
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) / TICKS_PER_SECOND;
  }

  /**
   * CPU time, user and system, in seconds, that each group of the process's threads has used so
   * far. A group is a thread name as the kernel keeps it (its first 15 characters) without the
   * trailing number: "C2 CompilerThre", "berth-pekko.act" (the actor dispatchers), "db-" (the
   * journal's JDBC threads). Threads that ended since are missing: read deltas of long-lived pools.
   */
  static Map<String, Double> cpuSecondsByThreadGroup(long pid) {
    Map<String, Double> groups = new HashMap<>();
    try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path task : (Iterable<Path>) tasks::iterator) {
        String stat;
        try {
          stat = Files.readString(task.resolve("stat"));
        } catch (IOException e) {
          continue; // the thread ended meanwhile
        }
        String name = nameOf(stat).replaceAll("\\d+$", "");
        groups.merge(name, cpuSecondsOf(stat), Double::sum);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return groups;
  }

  /**
   * CPU time that PostgreSQL's processes (every process named "postgres" on this machine) have
   * used so far, in seconds; NaN if there is none (a remote database).
   */
  static double postgresCpuSeconds() {
    double total = 0;
    boolean found = false;
    try (Stream<Path> processes = Files.list(Path.of("/proc"))) {
      for (Path process : (Iterable<Path>) processes::iterator) {
        if (!process.getFileName().toString().chars().allMatch(Character::isDigit)) {
          continue;
        }
        try {
          String stat = Files.readString(process.resolve("stat"));
          if (nameOf(stat).equals("postgres")) {
            total += cpuSecondsOf(stat);
            found = true;
          }
        } catch (IOException e) {
          // the process ended meanwhile
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return found ? total : Double.NaN;
  }

  /** The soft limit on open files of a process ({@code ulimit -n} inside it). */
  static long openFileLimit(long pid) {
    for (String line : readLines(Path.of("/proc", Long.toString(pid), "limits"))) {
      Matcher m = LIMIT_LINE.matcher(line);
      if (m.find()) {
        return m.group(1).equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(m.group(1));
      }
    }
    throw new IllegalStateException("no 'Max open files' in /proc/" + pid + "/limits");
  }

  /** File descriptors the process has open now. */
  static int openFiles(long pid) {
    try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
      return (int) fds.count();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A heap histogram: for each class, its instances and their bytes. */
  record Histogram(Map<String, long[]> byClass) {

    /**
     * What grew from {@code before} to this histogram, per unit (a socket), largest first, as
     * text lines: bytes per unit, instances per unit, class.
     */
    List<String> growthPer(Histogram before, int units, int top) {
      List<Map.Entry<String, long[]>> grown = new ArrayList<>();
      byClass.forEach((name, now) -> {
        long[] was = before.byClass.getOrDefault(name, new long[2]);
        grown.add(Map.entry(name, new long[] {now[0] - was[0], now[1] - was[1]}));
      });
      grown.sort((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1]));
      List<String> lines = new ArrayList<>();
      lines.add(String.format(Locale.ROOT, "%10s %10s  %s", "bytes/unit", "count/unit", "class"));
      for (Map.Entry<String, long[]> e : grown.subList(0, Math.min(top, grown.size()))) {
        lines.add(String.format(Locale.ROOT, "%10.1f %10.2f  %s", e.getValue()[1] / (double) units,
            e.getValue()[0] / (double) units, e.getKey()));
      }
      return lines;
    }
  }

  private static final Pattern HISTOGRAM_LINE = Pattern.compile("^\\s*\\d+:\\s+(\\d+)\\s+(\\d+)\\s+(\\S+)");

  /** The live objects by class (jcmd GC.class_histogram, which collects first). */
  static Histogram histogram(long pid) {
    Map<String, long[]> byClass = new HashMap<>();
    for (String line : jcmd(pid, "GC.class_histogram")) {
      Matcher m = HISTOGRAM_LINE.matcher(line);
      if (m.find()) {
        byClass.merge(m.group(3), new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))},
            (a, b) -> new long[] {a[0] + b[0], a[1] + b[1]});
      }
    }
    return new Histogram(byClass);
  }

  static long selfPid() {
    return ProcessHandle.current().pid();
  }

  /** Runs jcmd to its end (bounded), with its output in a temporary file. */
  private static List<String> jcmd(long pid, String... command) {
    Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
    Path out = null;
    try {
      out = Files.createTempFile("berth-bench-jcmd", ".txt");
      List<String> line = new ArrayList<>(List.of(jcmd.toString(), Long.toString(pid)));
      line.addAll(List.of(command));
      ChildProcess.Finished run = ChildProcess.runToEnd("jcmd", line, Map.of(), out, Duration.ofSeconds(60));
      if (run.exitCode() != 0) {
        throw new IllegalStateException("jcmd " + pid + " " + String.join(" ", command) + " failed: " + run.output());
      }
      return run.output().lines().toList();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run " + jcmd, e);
    } finally {
      if (out != null) {
        out.toFile().delete();
      }
    }
  }

  private static List<String> readLines(Path file) {
    try {
      return Files.readAllLines(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
