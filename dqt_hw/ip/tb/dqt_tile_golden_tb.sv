// Self-checking testbench of a generated dqt_hw tile on one golden conv_layer case.
//
// The FuseSoC core (dqt_hw.core, target `sim`) builds it with Verilator (--binary) around a
// tile of rtl/ and copies the case's files from golden/<case>/ into the work directory:
// x.hex (input master codes, N, C, H, W), w.hex (weight master codes, O, C, k, k),
// rq_K.hex, rq_E.hex, rq_S.hex (the aligned requantizer constants, docs/arithmetic.md
// section 4) and out.hex (the expected output codes, N, O, Ho, Wo): golden/README.md.
//
// The bench does what an integrator's DMA does (docs/hardware.md, "Tile stream
// protocol"): it cuts the layer's im2col GEMM into R x C blocks (row blocks outer),
// streams each block as one tile job (cmd, act + wgt with `pack` elements per transfer,
// rq with the lane constants of the block's output channels) with random idle cycles on
// every input stream and random back-pressure on out, and compares every out transfer
// (codes, row, last) with out.hex. It also checks the handshake rules it relies on:
// cmd is taken with the last act/wgt transfer of its job and never before.
//
// Exit status: 0 after "PASS"; non-zero ($fatal) on the first mismatch, a protocol
// error or a time-out. The tile's module name is the macro DQT_TILE; the parameters below
// are the tile's (its JSON sidecar's "parameters") and the case's (its manifest.json).
// The bench supports unsigned and signed codes, max_pack 1, 2 and 4, ROWS, COLS >= 2.
`ifndef DQT_TILE
`define DQT_TILE dqt_tile8x8_w32
`endif

module dqt_tile_golden_tb #(
    // the tile (sidecar "parameters")
    parameter int ROWS = 8,
    parameter int COLS = 8,
    parameter int N = 8,
    parameter bit SIGNED = 1'b0,
    parameter int DEPTH_BITS = 12,
    parameter int KBITS = 32,
    parameter int EBITS = 5,
    parameter int SBITS = 6,
    parameter int MAX_PACK = 1,
    // the golden conv_layer case (manifest.json "params" and array shapes)
    parameter int IMAGES = 1,
    parameter int CIN = 16,
    parameter int HIN = 6,
    parameter int WIN = 6,
    parameter int COUT = 8,
    parameter int KSIZE = 3,
    parameter int STRIDE = 1,
    parameter int PAD = 1,
    parameter int PAD_CODE = 0,
    parameter int B_A = 4,
    parameter int B_W = 4,
    parameter int B_OUT = 8,
    parameter int ROUNDING = 2,  // the sidecar's "rounding codes"
    parameter int CONST_BITS = 32,
    // the bench
    parameter int SEED = 1,
    parameter int IDLE_PERCENT = 20
);
  // ------------------------------------------------------------------ payload layout
  // (little-endian in the order of the fields, as the sidecar's ports[].fields give)
  localparam int WB = $clog2(N + 1);  // a width register holds b in 0..n
  localparam int CMD_W = DEPTH_BITS + 2 * WB;  // k, b_a, b_w
  localparam int ACT_W = MAX_PACK * ROWS * N;  // [s][i]: slot-major
  localparam int WGT_W = MAX_PACK * COLS * N;
  localparam int M_W = $clog2(ROWS + 1);
  localparam int NC_W = $clog2(COLS + 1);
  localparam int LANE_W = 4 * KBITS + 4 * EBITS + SBITS;  // k1..k4, e1..e4, s
  localparam int LANES_AT = M_W + NC_W + WB + 2;  // after m, ncols, b_out, rounding
  localparam int RQ_W = LANES_AT + COLS * LANE_W;
  localparam int ROW_W = $clog2(ROWS);
  localparam int OUT_W = COLS * N + ROW_W + 1;  // codes[C], row, last
  // ------------------------------------------------------------------ the layer
  localparam int HO = (HIN + 2 * PAD - KSIZE) / STRIDE + 1;
  localparam int WO = (WIN + 2 * PAD - KSIZE) / STRIDE + 1;
  localparam int M = IMAGES * HO * WO;  // GEMM rows: output pixels
  localparam int KD = CIN * KSIZE * KSIZE;  // GEMM depth
  localparam int RB = (M + ROWS - 1) / ROWS;  // row blocks
  localparam int CB = (COUT + COLS - 1) / COLS;  // column blocks
  localparam int JOBS = RB * CB;
  localparam int WMAX = B_A > B_W ? B_A : B_W;
  localparam int PACK = (MAX_PACK >= 4 && 4 * WMAX <= N) ? 4 :
                        (MAX_PACK >= 2 && 2 * WMAX <= N) ? 2 : 1;
  localparam int STEPS = (KD + PACK - 1) / PACK;  // act/wgt transfers per job
  localparam int TIMEOUT = 1000 + JOBS * (STEPS + ROWS + COLS + 4) * 20;

  logic [N-1:0] x_mem[IMAGES*CIN*HIN*WIN];
  logic [N-1:0] w_mem[COUT*KD];
  logic [CONST_BITS-1:0] k_mem[4*COUT];
  logic [15:0] e_mem[4*COUT];
  logic [15:0] s_mem[COUT];
  logic [N-1:0] out_mem[IMAGES*COUT*HO*WO];

  logic clk;
  logic rst = 1'b1;
  initial begin
    clk = 1'b0;
    forever #5 clk = ~clk;
  end

  logic [CMD_W-1:0] cmd_payload = '0;
  logic [ACT_W-1:0] act_payload = '0;
  logic [WGT_W-1:0] wgt_payload = '0;
  logic [RQ_W-1:0] rq_payload = '0;
  logic cmd_valid = 1'b0, act_valid = 1'b0, wgt_valid = 1'b0, rq_valid = 1'b0;
  logic out_ready = 1'b0;
  wire cmd_ready, act_ready, wgt_ready, rq_ready, out_valid;
  wire [OUT_W-1:0] out_payload;

  `DQT_TILE dut (
      .clk(clk),
      .rst(rst),
      .cmd__payload(cmd_payload),
      .cmd__valid(cmd_valid),
      .cmd__ready(cmd_ready),
      .act__payload(act_payload),
      .act__valid(act_valid),
      .act__ready(act_ready),
      .wgt__payload(wgt_payload),
      .wgt__valid(wgt_valid),
      .wgt__ready(wgt_ready),
      .rq__payload(rq_payload),
      .rq__valid(rq_valid),
      .rq__ready(rq_ready),
      .out__payload(out_payload),
      .out__valid(out_valid),
      .out__ready(out_ready)
  );

  // ------------------------------------------------------------------ the case's data
  // A[r][kk]: im2col of x (rows r = (image, y, x), columns kk = (c, dy, dx)), with
  // PAD_CODE outside the image (the master codes are padded before the tile views them)
  function automatic logic [N-1:0] a_code(int r, int kk);
    int img = r / (HO * WO), yo = (r / WO) % HO, xo = r % WO;
    int c = kk / (KSIZE * KSIZE), dy = (kk / KSIZE) % KSIZE, dx = kk % KSIZE;
    int y = yo * STRIDE - PAD + dy, xi = xo * STRIDE - PAD + dx;
    if (y < 0 || y >= HIN || xi < 0 || xi >= WIN) return N'(PAD_CODE);
    return x_mem[((img*CIN+c)*HIN+y)*WIN+xi];
  endfunction

  // W[kk][o] = w[o][c][dy][dx]
  function automatic logic [N-1:0] w_code(int kk, int o);
    return w_mem[o*KD+kk];
  endfunction

  // expected code of output pixel r, channel o, sign-extended from B_OUT bits if signed
  function automatic logic [N-1:0] out_code(int r, int o);
    int img = r / (HO * WO), p = r % (HO * WO);
    logic [N-1:0] v = out_mem[(img*COUT+o)*HO*WO+p];
    if (SIGNED && B_OUT < N && v[B_OUT-1]) v = v | ~((N'(1) << B_OUT) - N'(1));
    return v;
  endfunction

  // the lane fields of output channel o: (K, E, S) of align(), a negative S folded into
  // the E of the nonzero K (dqt_hw.hw.reference.lane_constants)
  function automatic logic [LANE_W-1:0] lane(int o);
    logic [LANE_W-1:0] f = '0;
    int s = int'($signed(s_mem[o]));
    for (int t = 0; t < 4; t++) begin
      logic signed [63:0] k = 64'($signed(k_mem[t*COUT+o]));  // fits KBITS (fits())
      int e = int'($signed(e_mem[t*COUT+o]));
      if (s < 0) e = (k != '0) ? e - s : 0;
      f[t*KBITS+:KBITS] = k[KBITS-1:0];
      f[4*KBITS+t*EBITS+:EBITS] = e[EBITS-1:0];
    end
    f[4*KBITS+4*EBITS+:SBITS] = (s < 0) ? '0 : s[SBITS-1:0];
    return f;
  endfunction

  function automatic int rows_of(int job);
    int i0 = (job / CB) * ROWS;
    return (M - i0 < ROWS) ? M - i0 : ROWS;
  endfunction

  function automatic int cols_of(int job);
    int j0 = (job % CB) * COLS;
    return (COUT - j0 < COLS) ? COUT - j0 : COLS;
  endfunction

  // ------------------------------------------------------------------ checks
  int rows_seen = 0;
  int cycles;  // rising edges since time 0 (counted by the watchdog below)

  task automatic fail(string what);
    $fatal(1, "dqt_tile_golden_tb: FAIL: %s", what);
  endtask

  // cmd, act and wgt: the job's cmd held for its whole input phase, act + wgt joined
  task automatic drive_inputs();
    for (int job = 0; job < JOBS; job++) begin
      int i0 = (job / CB) * ROWS, j0 = (job % CB) * COLS;
      int m = rows_of(job), nc = cols_of(job);
      cmd_payload = {WB'(B_W), WB'(B_A), DEPTH_BITS'(KD)};
      cmd_valid = 1'b1;
      for (int t = 0; t < STEPS; t++) begin
        logic took;
        while ($urandom_range(99) < IDLE_PERCENT) begin
          act_valid = 1'b0;
          wgt_valid = 1'b0;
          @(posedge clk);
          #1;
        end
        act_payload = '0;
        wgt_payload = '0;
        for (int s = 0; s < PACK; s++) begin
          int kk = t * PACK + s;
          if (kk < KD) begin
            for (int i = 0; i < m; i++) act_payload[(s*ROWS+i)*N+:N] = a_code(i0 + i, kk);
            for (int j = 0; j < nc; j++) wgt_payload[(s*COLS+j)*N+:N] = w_code(kk, j0 + j);
          end
        end
        act_valid = 1'b1;
        wgt_valid = 1'b1;
        do begin
          @(negedge clk);
          took = act_ready;
          if (act_ready != wgt_ready) fail($sformatf("act.ready %0d != wgt.ready %0d",
                                                    act_ready, wgt_ready));
          if (took && cmd_ready != (t == STEPS - 1))
            fail($sformatf("job %0d step %0d of %0d: cmd.ready = %0d", job, t, STEPS,
                           cmd_ready));
          @(posedge clk);
          #1;
        end while (!took);
      end
      cmd_valid = 1'b0;
      act_valid = 1'b0;
      wgt_valid = 1'b0;
    end
  endtask

  // rq: one per job, in the order of cmd
  task automatic drive_rq();
    for (int job = 0; job < JOBS; job++) begin
      int j0 = (job % CB) * COLS, nc = cols_of(job);
      logic took;
      while ($urandom_range(99) < IDLE_PERCENT) begin
        rq_valid = 1'b0;
        @(posedge clk);
        #1;
      end
      rq_payload = '0;
      rq_payload[0+:M_W] = M_W'(rows_of(job));
      rq_payload[M_W+:NC_W] = NC_W'(nc);
      rq_payload[M_W+NC_W+:WB] = WB'(B_OUT);
      rq_payload[M_W+NC_W+WB+:2] = 2'(ROUNDING);
      for (int j = 0; j < COLS; j++)  // columns past ncols: any value (lane 0's)
        rq_payload[LANES_AT+j*LANE_W+:LANE_W] = lane(j0 + (j < nc ? j : 0));
      rq_valid = 1'b1;
      do begin
        @(negedge clk);
        took = rq_ready;
        @(posedge clk);
        #1;
      end while (!took);
      rq_valid = 1'b0;
    end
  endtask

  // out: random back-pressure; every transfer compared with the next expected row
  task automatic monitor_out();
    for (int job = 0; job < JOBS; job++) begin
      int i0 = (job / CB) * ROWS, j0 = (job % CB) * COLS;
      int m = rows_of(job), nc = cols_of(job);
      for (int i = 0; i < m; i++) begin
        logic took;
        do begin
          out_ready = ($urandom_range(99) >= IDLE_PERCENT);
          @(negedge clk);
          took = out_valid && out_ready;
          if (took) begin
            logic [OUT_W-1:0] want = '0;
            for (int j = 0; j < nc; j++) want[j*N+:N] = out_code(i0 + i, j0 + j);
            want[COLS*N+:ROW_W] = ROW_W'(i);
            want[COLS*N+ROW_W] = (i == m - 1);
            if (out_payload !== want)
              fail($sformatf("job %0d row %0d: out.payload %h, expected %h", job, i,
                             out_payload, want));
            rows_seen++;
          end
          @(posedge clk);
          #1;
        end while (!took);
      end
    end
    out_ready = 1'b0;
  endtask

  initial begin
    void'($urandom(SEED));
    $readmemh("x.hex", x_mem);
    $readmemh("w.hex", w_mem);
    $readmemh("rq_K.hex", k_mem);
    $readmemh("rq_E.hex", e_mem);
    $readmemh("rq_S.hex", s_mem);
    $readmemh("out.hex", out_mem);
    $display("dqt_tile_golden_tb: %0dx%0d tile, conv %0dx%0dx%0d k%0d -> %0d channels at %0d/%0d bits: %0d jobs of K = %0d (%0d per transfer), %0d%% idle/stall",
             ROWS, COLS, CIN, HIN, WIN, KSIZE, COUT, B_A, B_W, JOBS, KD, PACK, IDLE_PERCENT);
    repeat (3) @(posedge clk);
    #1;
    rst = 1'b0;
    fork
      drive_inputs();
      drive_rq();
      monitor_out();
    join
    if (rows_seen != M * CB) fail($sformatf("%0d rows came out, %0d expected", rows_seen, M * CB));
    // nothing more may come out
    repeat (2 * (ROWS + COLS)) begin
      out_ready = 1'b1;
      @(negedge clk);
      if (out_valid) fail("an extra out transfer");
      @(posedge clk);
      #1;
    end
    $display("dqt_tile_golden_tb: PASS: %0d rows x %0d codes equal out.hex in %0d cycles",
             rows_seen, COLS, cycles);
    $finish;
  end

  initial begin
    for (cycles = 0; cycles < TIMEOUT; cycles++) @(posedge clk);
    fail($sformatf("time-out after %0d cycles (%0d rows out)", TIMEOUT, rows_seen));
  end
endmodule
