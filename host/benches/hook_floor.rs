//! The floor under a sandboxed hook call on this machine: what a fresh instance of
//! the smallest possible component costs with the host's own engine configuration
//! (pooling allocator, fuel, epoch deadline, copy-on-write memory images, pages reset
//! with `PAGEMAP_SCAN`), and what lowering arguments adds, before any guest code runs.
//!
//! `cargo bench -p loyalty-host --bench hook_floor`. The component is built here with
//! `wasm-encoder`: one core module with a linear memory the size of the airline
//! plugin's (7 pages of 64 KiB), no imports, and two exports:
//! - `touch(pages: u32) -> u32` writes one word into each of the first `pages` 4 KiB
//!   pages (a guest's stack, statics and heap are what a real call dirties), lifted
//!   with scalar types only, so nothing is lowered into guest memory;
//! - `count(strings: list<string>) -> u32` returns the list's length: the host lowers
//!   the list and each string into guest memory through the module's `cabi_realloc`
//!   (a bump allocator of a few instructions), as it lowers a hook's member, event and
//!   context (the airline's `on-event` lowers about 20 strings and lists).
//!
//! Each iteration does what the host does per hook call: a new store with fuel and a
//! deadline, instantiation from an `InstancePre`, the call, and the store's teardown
//! (which resets the dirtied pages for the next instance). Run next to `hook_call`
//! (`scripts/bench` runs both): the floor is what no plugin, however small, can go
//! below with this runtime on this machine.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use loyalty_host::sandbox::{Limits, Sandbox};
use wasm_encoder::{
    BlockType, CanonicalOption, CodeSection, ComponentBuilder, ComponentExportKind,
    ComponentValType, ConstExpr, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, MemArg, MemorySection, MemoryType, Module, PrimitiveValType,
    TypeSection, ValType,
};
use wasmtime::Store;
use wasmtime::component::{Component, Linker, TypedFunc};

/// Wasm pages (64 KiB) of the component's memory: the airline plugin's initial size.
const MEMORY_PAGES: u64 = 7;

/// Where the module's bump allocator starts handing out memory (past the pages
/// `touch` writes).
const HEAP_START: i32 = 1 << 18;

/// The core module: `touch(pages) -> pages`, writing one word per 4 KiB page;
/// `cabi_realloc`, a bump allocator (what the host calls to place each argument
/// string and list in guest memory); `count(ptr, len) -> len`, for a `list<string>`.
fn core_module() -> Module {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32; 4], [ValType::I32]);
    types.ty().function([ValType::I32; 2], [ValType::I32]);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    funcs.function(1);
    funcs.function(2);
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(HEAP_START),
    );
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: MEMORY_PAGES,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("touch", ExportKind::Func, 0);
    exports.export("cabi_realloc", ExportKind::Func, 1);
    exports.export("count", ExportKind::Func, 2);

    // local 1 = i; while i < pages { mem[i * 4096] = i; i += 1 }; return pages
    let mut f = Function::new([(1, ValType::I32)]);
    let store = MemArg {
        offset: 0,
        align: 2,
        memory_index: 0,
    };
    f.instructions()
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(1)
        .local_get(0)
        .i32_ge_u()
        .br_if(1)
        .local_get(1)
        .i32_const(4096)
        .i32_mul()
        .local_get(1)
        .i32_store(store)
        .local_get(1)
        .i32_const(1)
        .i32_add()
        .local_set(1)
        .br(0)
        .end()
        .end()
        .local_get(0)
        .end();
    let mut code = CodeSection::new();
    code.function(&f);

    // cabi_realloc(old_ptr, old_size, align, new_size): align the bump pointer, hand
    // it out, move it on (never reused: the instance is thrown away after one call).
    let mut realloc = Function::new([(1, ValType::I32)]);
    realloc
        .instructions()
        .global_get(0)
        .local_get(2)
        .i32_add()
        .i32_const(1)
        .i32_sub()
        .i32_const(0)
        .local_get(2)
        .i32_sub()
        .i32_and()
        .local_tee(4)
        .local_get(3)
        .i32_add()
        .global_set(0)
        .local_get(4)
        .end();
    code.function(&realloc);

    let mut count = Function::new([]);
    count.instructions().local_get(1).end();
    code.function(&count);

    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&code);
    module
}

/// The component: the core module instantiated and `touch` lifted as
/// `func(pages: u32) -> u32`.
fn component_bytes() -> Vec<u8> {
    let mut c = ComponentBuilder::default();
    let module = c.core_module(None, &core_module());
    let instance = c.core_instantiate(None, module, []);
    let core_touch = c.core_alias_export(None, instance, "touch", ExportKind::Func);
    let (ty, mut enc) = c.type_function(None);
    enc.params([("pages", ComponentValType::Primitive(PrimitiveValType::U32))])
        .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
    let touch = c.lift_func(None, core_touch, ty, []);
    c.export("touch", ComponentExportKind::Func, touch, None);

    let memory = c.core_alias_export(None, instance, "memory", ExportKind::Memory);
    let realloc = c.core_alias_export(None, instance, "cabi_realloc", ExportKind::Func);
    let core_count = c.core_alias_export(None, instance, "count", ExportKind::Func);
    let (strings, enc) = c.type_defined(None);
    enc.list(ComponentValType::Primitive(PrimitiveValType::String));
    let (ty, mut enc) = c.type_function(None);
    enc.params([("strings", ComponentValType::Type(strings))])
        .result(Some(ComponentValType::Primitive(PrimitiveValType::U32)));
    let count = c.lift_func(
        None,
        core_count,
        ty,
        [
            CanonicalOption::UTF8,
            CanonicalOption::Memory(memory),
            CanonicalOption::Realloc(realloc),
        ],
    );
    c.export("count", ComponentExportKind::Func, count, None);
    c.finish()
}

fn bench(c: &mut Criterion) {
    // The host's engine, configured exactly as for plugins.
    let sandbox = Sandbox::new(Limits::default()).unwrap();
    let engine = sandbox.engine();
    let limits = sandbox.limits().clone();
    let component = Component::new(engine, component_bytes()).unwrap();
    let pre = Linker::<()>::new(engine)
        .instantiate_pre(&component)
        .unwrap();
    let touch_export = component.get_export_index(None, "touch").unwrap();
    let count_export = component.get_export_index(None, "count").unwrap();

    let store = || {
        let mut store = Store::new(engine, ());
        store.set_fuel(limits.fuel).unwrap();
        store.set_epoch_deadline(100);
        store.epoch_deadline_trap();
        store
    };
    let call = |pages: u32| -> u32 {
        let mut store = store();
        let instance = pre.instantiate(&mut store).unwrap();
        let touch: TypedFunc<(u32,), (u32,)> =
            instance.get_typed_func(&mut store, touch_export).unwrap();
        let (out,) = touch.call(&mut store, (pages,)).unwrap();
        out
    };
    let call_strings = |strings: &[String]| -> u32 {
        let mut store = store();
        let instance = pre.instantiate(&mut store).unwrap();
        let count: TypedFunc<(&[String],), (u32,)> =
            instance.get_typed_func(&mut store, count_export).unwrap();
        let (out,) = count.call(&mut store, (strings,)).unwrap();
        out
    };
    assert_eq!(call(3), 3);
    // About as many strings as the airline's on-event lowers (ids, tier, currency,
    // line items' skus and categories, attribute keys and values, the config).
    let strings: Vec<String> = (0..20).map(|i| format!("string-{i}")).collect();
    assert_eq!(call_strings(&strings), 20);

    let mut group = c.benchmark_group("fresh instance floor");
    for pages in [0u32, 12, 48] {
        group.bench_function(format!("{pages} pages written"), |b| {
            b.iter(|| call(black_box(pages)))
        });
    }
    for n in [1, 20] {
        let strings = &strings[..n];
        group.bench_function(format!("0 pages written, {n} short strings lowered"), |b| {
            b.iter(|| call_strings(black_box(strings)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
