package io.berth.node.journal;

import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Journal rows kept as test resources ({@code journal-fixtures/<name>/}): the {@code event_journal},
 * {@code event_tag} and {@code snapshot} tables of Pekko Persistence JDBC on PostgreSQL, one file
 * per table, as written by the code of the day the fixture is named after. Each file is
 * tab-separated with a header line naming the columns; {@code \N} is SQL NULL and bytea columns
 * are base64. {@link #dump} writes such files from a database, {@link #load} puts them back into
 * an empty one, and {@link #table} reads them.
 */
public final class JournalFixture {

  /** The tables of a fixture, in the order they can be loaded (event_tag refers to event_journal). */
  public static final List<String> TABLES = List.of("event_journal", "event_tag", "snapshot");

  private static final String NULL = "\\N";
  private static final Map<String, String> ORDER_BY = Map.of(
      "event_journal", "ordering",
      "event_tag", "event_id, tag",
      "snapshot", "persistence_id, sequence_number");

  /** One row: column name to value (its text, a byte[] for bytea, or null). */
  public record Row(Map<String, Object> columns) {
    public String string(String column) {
      return (String) columns.get(column);
    }

    public long number(String column) {
      return Long.parseLong(string(column));
    }

    public byte[] bytes(String column) {
      return (byte[]) columns.get(column);
    }
  }

  private JournalFixture() {}

  /** The rows of one table of fixture {@code name}, from the test classpath, in the order written. */
  public static List<Row> table(String name, String table) {
    String resource = "/journal-fixtures/" + name + "/" + table + ".tsv";
    try (InputStream in = JournalFixture.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalArgumentException("no fixture file " + resource + " on the test classpath");
      }
      return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new IllegalStateException("cannot read " + resource, e);
    }
  }

  /**
   * Inserts every row of fixture {@code name} into the journal tables of {@code db}, which must
   * hold none with the same keys; the ordering sequence then continues after the highest one loaded.
   */
  public static void load(DatabaseSettings db, String name) {
    try (Connection c = SchemaInstaller.connect(db)) {
      c.setAutoCommit(false);
      for (String table : TABLES) {
        Map<String, Integer> types = columnTypes(c, table);
        for (Row row : table(name, table)) {
          insert(c, table, types, row);
        }
      }
      try (Statement s = c.createStatement()) {
        s.execute("SELECT setval(pg_get_serial_sequence('event_journal', 'ordering'),"
            + " (SELECT COALESCE(max(ordering), 0) + 1 FROM event_journal), false)");
      }
      c.commit();
    } catch (SQLException e) {
      throw new IllegalStateException("cannot load journal fixture " + name + ": " + e.getMessage(), e);
    }
  }

  /** Writes the journal tables of {@code db} into {@code dir}, one file per table. */
  public static void dump(DatabaseSettings db, Path dir) throws IOException {
    Files.createDirectories(dir);
    try (Connection c = SchemaInstaller.connect(db); Statement s = c.createStatement()) {
      for (String table : TABLES) {
        StringBuilder out = new StringBuilder();
        try (ResultSet r = s.executeQuery("SELECT * FROM " + table + " ORDER BY " + ORDER_BY.get(table))) {
          ResultSetMetaData meta = r.getMetaData();
          List<String> names = new ArrayList<>();
          for (int i = 1; i <= meta.getColumnCount(); i++) {
            names.add(meta.getColumnName(i));
          }
          out.append(String.join("\t", names)).append('\n');
          while (r.next()) {
            List<String> cells = new ArrayList<>();
            for (int i = 1; i <= meta.getColumnCount(); i++) {
              cells.add(cell(r, i, meta.getColumnType(i)));
            }
            out.append(String.join("\t", cells)).append('\n');
          }
        }
        Files.writeString(dir.resolve(table + ".tsv"), out.toString(), StandardCharsets.UTF_8);
      }
    } catch (SQLException e) {
      throw new IllegalStateException("cannot dump the journal of " + db.url() + ": " + e.getMessage(), e);
    }
  }

  private static String cell(ResultSet r, int column, int type) throws SQLException {
    Object value = type == Types.BINARY || type == Types.VARBINARY || type == Types.LONGVARBINARY
        ? r.getBytes(column) : r.getObject(column);
    if (value == null) {
      return NULL;
    }
    if (value instanceof byte[] bytes) {
      return "base64:" + Base64.getEncoder().encodeToString(bytes);
    }
    String text = value.toString();
    if (text.contains("\t") || text.contains("\n") || text.equals(NULL) || text.startsWith("base64:")) {
      throw new IllegalStateException("column " + r.getMetaData().getColumnName(column) + " holds '" + text
          + "', which this format cannot hold");
    }
    return text;
  }

  private static List<Row> parse(String text) {
    String[] lines = text.split("\n");
    String[] names = lines[0].split("\t", -1);
    List<Row> rows = new ArrayList<>();
    for (int l = 1; l < lines.length; l++) {
      if (lines[l].isEmpty()) {
        continue;
      }
      String[] cells = lines[l].split("\t", -1);
      if (cells.length != names.length) {
        throw new IllegalStateException("line " + (l + 1) + " has " + cells.length + " cells, the header "
            + names.length);
      }
      Map<String, Object> columns = new LinkedHashMap<>();
      for (int i = 0; i < names.length; i++) {
        columns.put(names[i], value(cells[i]));
      }
      rows.add(new Row(columns));
    }
    return rows;
  }

  private static Object value(String cell) {
    if (cell.equals(NULL)) {
      return null;
    }
    if (cell.startsWith("base64:")) {
      return Base64.getDecoder().decode(cell.substring("base64:".length()));
    }
    return cell;
  }

  private static Map<String, Integer> columnTypes(Connection c, String table) throws SQLException {
    Map<String, Integer> types = new LinkedHashMap<>();
    try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT * FROM " + table + " WHERE false")) {
      ResultSetMetaData meta = r.getMetaData();
      for (int i = 1; i <= meta.getColumnCount(); i++) {
        types.put(meta.getColumnName(i), meta.getColumnType(i));
      }
    }
    return types;
  }

  private static void insert(Connection c, String table, Map<String, Integer> types, Row row) throws SQLException {
    List<String> names = new ArrayList<>(row.columns().keySet());
    String sql = "INSERT INTO " + table + " (" + String.join(", ", names) + ") VALUES ("
        + String.join(", ", names.stream().map(n -> "?").toList()) + ")";
    try (PreparedStatement s = c.prepareStatement(sql)) {
      for (int i = 1; i <= names.size(); i++) {
        Object value = row.columns().get(names.get(i - 1));
        Integer type = types.get(names.get(i - 1));
        if (type == null) {
          throw new IllegalStateException(table + " has no column " + names.get(i - 1));
        }
        if (value == null) {
          s.setNull(i, type);
        } else if (value instanceof byte[] bytes) {
          s.setBytes(i, bytes);
        } else if (type == Types.BIGINT || type == Types.INTEGER) {
          s.setLong(i, Long.parseLong((String) value));
        } else if (type == Types.BOOLEAN || type == Types.BIT) {
          s.setBoolean(i, Boolean.parseBoolean((String) value));
        } else {
          s.setString(i, (String) value);
        }
      }
      s.executeUpdate();
    }
  }
}
